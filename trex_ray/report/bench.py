"""The results table of a bench sweep: one row per task, written as parquet and markdown.

Example::

    paths = write_table(rows, Path("runs/bench-mini"), title="ftbench-mini", wall_seconds=1800)
    print(markdown(rows))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# base / best: validation (what the search saw); base_test / best_test: the test split, never seen by the
# search; trex: TREX's published score on the real task (docs/ftbench.md), "-" where there is none.
COLUMNS = ("task", "metric", "base", "best", "base_test", "best_test", "trex", "gain", "nodes",
           "compute_seconds", "wall_seconds")
HEADERS = ("task", "metric", "base val", "best val", "base test", "best test", "TREX (paper)", "gain (val)",
           "nodes", "compute s", "wall s")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], title: str = "", wall_seconds: float | None = None) -> str:
    """A GitHub markdown table of the rows, with a line counting the tasks that gained."""
    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows:
        cells = [_cell(row.get(c)) for c in COLUMNS]
        if row.get("error"):
            cells[0] += f" (error: {row['error'][:60]})"
        lines.append("| " + " | ".join(cells) + " |")
    gained = sum(1 for r in rows if (r.get("gain") or 0) > 0)
    tested = [r for r in rows if r.get("base_test") is not None and r.get("best_test") is not None]
    gained_test = sum(1 for r in tested if r["best_test"] > r["base_test"])
    lines += ["", f"gain over base on {gained}/{len(rows)} tasks (validation); "
              f"on the test split on {gained_test}/{len(tested)} tasks scored there"]
    if wall_seconds is not None:
        lines[-1] += f"; wall time {wall_seconds / 60:.1f} min"
    return "\n".join(lines) + "\n"


def write_table(
    rows: list[dict[str, Any]], out_dir: str | Path, title: str = "", wall_seconds: float | None = None
) -> tuple[Path, Path]:
    """``results.parquet`` (every field of every row) and ``results.md`` in ``out_dir``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    table = pa.table({k: [row.get(k) for row in rows] for k in keys})
    parquet, md = out / "results.parquet", out / "results.md"
    pq.write_table(table, parquet)
    md.write_text(markdown(rows, title, wall_seconds))
    return parquet, md
