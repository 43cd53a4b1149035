"""The data behind the tree explorer: a JSON-able view of a run, shared by the HTML page,
the live server (``/data.json``) and the PNG plots.

Everything here is plain data; nothing is escaped for HTML (``html.py`` embeds it safely).
Non-finite numbers (a diverged loss) become ``None``, so the result is strict JSON.

Example::

    tree = Store(run_dir).replay()
    data = explorer_data(tree, run_dir)
    points = best_vs_compute(tree)      # [(cumulative compute-seconds, best metric, node id), ...]
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from trex_ray.report.text import describe
from trex_ray.spec import Progress
from trex_ray.spec.plan_text import plan_changes
from trex_ray.tree import Node, SearchTree

FORMAT = 1
MAX_SAMPLES = 8  # sample predictions kept per node
MAX_TEXT = 2000  # characters kept of one free-text field (a sample, an error, a rationale)
LOG_TAIL_BYTES = 6000  # bytes read from the end of each log file of a node
LOG_TAIL_LINES = 60


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits)


def _text(s: Any, limit: int = MAX_TEXT) -> str | None:
    if s is None:
        return None
    s = str(s)
    return s if len(s) <= limit else s[:limit] + f"… [{len(s) - limit} more characters]"




def flat_plan(node: Node) -> dict[str, Any]:
    """The plan as ``section.key -> value`` (data ops as one entry each), rationale left out."""
    plan = node.plan
    out: dict[str, Any] = {}
    for section in ("train", "eval"):
        for key, value in getattr(plan, section).model_dump(mode="json").items():
            out[f"{section}.{key}"] = value
    out["data.template"] = plan.data.template
    for op in plan.data.ops:
        out[f"data.{op.op}"] = op.params or True
    out["seed"] = plan.seed
    return out


def curve_rows(progress: list[Progress]) -> list[list[float | None]]:
    """``[fraction, step, train_loss, val_loss]`` per report; NaN/inf (divergence) as None."""
    return [[_num(p.fraction, 4), p.step, _num(p.train_loss), _num(p.val_loss)] for p in progress]


def log_tail(run_dir: Path | None, node_id: str) -> str | None:
    """The last lines of each ``RUN_DIR/nodes/<id>/*.log``, or None when there is none."""
    if run_dir is None:
        return None
    logs = sorted((run_dir / "nodes" / node_id).glob("*.log"))
    parts = []
    for path in logs:
        try:
            with open(path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - LOG_TAIL_BYTES))
                raw = f.read()
        except OSError:
            continue
        # split on "\n" only: str.splitlines would also break at U+2028 and friends inside a line
        lines = raw.decode("utf-8", errors="replace").rstrip("\n").split("\n")
        if size > LOG_TAIL_BYTES and lines:
            lines = lines[1:]  # the first line read is probably cut
        header = f"==> {path.name} <==" if len(logs) > 1 else None
        parts.append("\n".join(([header] if header else []) + lines[-LOG_TAIL_LINES:]))
    return "\n".join(parts) if parts else None


def node_data(tree: SearchTree, node: Node, run_dir: Path | None) -> dict[str, Any]:
    r = node.result
    parent = tree.nodes.get(node.parent) if node.parent else None
    progress = node.progress or (r.curve if r else [])
    return {
        "id": node.id,
        "parent": node.parent,
        "depth": node.depth,
        "status": node.status.value,
        "metric": _num(node.metric),  # on the validation split
        "test_metric": _num(node.test_metric),  # on the test split: the base and the best nodes only
        "label": describe(node),
        "plan": flat_plan(node),
        "changes": plan_changes(parent.plan, node.plan) if parent else [],
        "rationale": _text(node.plan.rationale),
        "insight": _text(node.insight),
        "prune_reason": _text(node.prune_reason),
        "attempts": node.attempts,
        "started_at": node.started_at,
        "finished_at": node.finished_at,
        "curve": curve_rows(progress),
        "metrics": {k: _num(v) for k, v in r.metrics.items()} if r else {},
        "cost": r.cost.model_dump(mode="json") if r else None,
        "failure": r.failure.value if r and r.failure else None,
        "error": _text(r.error) if r else None,
        "eval_backend": r.eval_backend if r else None,
        "checkpoint": r.checkpoint if r else None,
        "samples": [{k: _text(v, 600) for k, v in s.items()} for s in r.samples[:MAX_SAMPLES]] if r else [],
        "log": log_tail(run_dir, node.id),
    }


def best_vs_compute(tree: SearchTree) -> list[tuple[float, float | None, str]]:
    """Best metric so far against cumulative compute-seconds, nodes taken in the order they ended.

    Every ended node adds its compute (failed and stopped ones cost too); the best metric only
    moves on finished, scored nodes. One point per ended node.
    """
    ended = [n for n in tree if n.result is not None]
    ended.sort(key=lambda n: (n.finished_at if n.finished_at is not None else math.inf, _id_number(n.id)))
    points: list[tuple[float, float | None, str]] = []
    total, best = 0.0, None
    for n in ended:
        assert n.result is not None
        total += n.result.cost.compute_seconds
        m = n.metric
        if m is not None and math.isfinite(m) and (best is None or m > best):
            best = m
        points.append((round(total, 3), best, n.id))
    return points


def _id_number(node_id: str) -> int:
    digits = node_id[1:]
    return int(digits) if digits.isdigit() else 1 << 30


def _task_info(tree: SearchTree) -> dict[str, Any]:
    task = tree.meta.get("task") or {}
    metric = task.get("metric") or {}
    return {
        "name": task.get("name"),
        "description": _text(task.get("description")),
        "model": (task.get("model") or {}).get("id"),
        "metric": metric.get("name", "metric"),
        "higher_is_better": metric.get("higher_is_better", True),
    }


def explorer_data(tree: SearchTree, run_dir: str | Path | None = None, live: bool = False) -> dict[str, Any]:
    """Everything the explorer page shows, as strict-JSON-able data."""
    path = Path(run_dir) if run_dir is not None else None
    counts: dict[str, int] = {}
    for n in tree:
        counts[n.status.value] = counts.get(n.status.value, 0) + 1
    root = tree.root
    return {
        "format": FORMAT,
        "run_id": tree.meta.get("run_id") or (path.name if path else None),
        "task": _task_info(tree),
        "seq": tree.last_seq,
        "finished_reason": tree.finished_reason,
        "live": live,
        "generated_at": time.time(),
        "counts": counts,
        "base_metric": _num(root.metric) if root else None,
        "base_test_metric": _num(root.test_metric) if root else None,
        "best_path": [n.id for n in tree.best_path()],
        "compute": [[c, _num(b), i] for c, b, i in best_vs_compute(tree)],
        "insights": [_text(i.get("text")) for i in tree.insights],
        "nodes": [node_data(tree, n, path) for n in tree],
    }
