"""Live progress of a run: a rich table on a terminal, one log line per change elsewhere."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from trex_ray.spec import TaskSpec


class ProgressDisplay:
    def __init__(self, task: TaskSpec, run_dir: Path, live: bool = True) -> None:
        self.task = task
        self.run_dir = run_dir
        self.console = Console(stderr=True)
        self.live = live and sys.stderr.isatty()
        self._live: Live | None = None
        self._seen: dict[str, str] = {}
        self._t0 = time.time()

    def __enter__(self) -> ProgressDisplay:
        self.console.print(f"[bold]trex[/] run of [cyan]{self.task.name}[/] in {self.run_dir}")
        if self.live:
            self._live = Live(console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, status: dict[str, Any]) -> None:
        if self._live is not None:
            self._live.update(self._table(status))
            return
        for node in status["nodes"]:
            state = f"{node['status']}:{node['metric']}"
            if self._seen.get(node["id"]) != state:
                self._seen[node["id"]] = state
                metric = "" if node["metric"] is None else f" {status['metric_name']}={node['metric']:.4f}"
                self.console.print(f"[{time.time() - self._t0:6.0f}s] {node['id']} {node['status']}{metric}  "
                                   f"{node['plan']}", highlight=False)

    def _table(self, status: dict[str, Any]) -> Table:
        best = status.get("best") or {}
        running = status["counts"].get("running", 0)
        title = (f"{status['task']} — {len(status['nodes'])} nodes, {running} running, "
                 f"best {best.get('metric', '-')} ({best.get('node_id', '-')}), "
                 f"{time.time() - self._t0:.0f}s")
        table = Table(title=title, expand=False)
        for col in ("node", "parent", "status", status["metric_name"], "plan"):
            table.add_column(col)
        for node in status["nodes"][-20:]:
            metric = f"{node['metric']:.4f}" if node["metric"] is not None else ""
            table.add_row(node["id"], node["parent"] or "-", node["status"], metric, node["plan"])
        return table
