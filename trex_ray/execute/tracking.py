"""Experiment tracking the libraries' own way: TensorBoard event files per node, MLflow runs per search.

* **TensorBoard** (``tracking.tensorboard``, on by default): each node writes
  ``RUN_DIR/tensorboard/<node>/`` (``<node>.a<k>`` for a retried attempt) with tensorboardX:
  ``train/loss`` and ``train/lr`` every step and ``val/loss`` at each report (rank 0, from the training
  loop, live), then ``val/<metric>`` and the plan as hyper-parameters (the HParams dashboard) once the
  node is scored, and ``test/<metric>`` if it is scored on the test split. ``tensorboard --logdir
  RUN_DIR/tensorboard`` shows every node as a run.
* **MLflow** (``tracking.mlflow: URI``, or ``MLFLOW_TRACKING_URI`` set when ``trex run`` starts): one
  parent run for the search (tag ``trex.run_id``) and one nested run per ended node with the plan as
  params, the loss curves as step metrics, the validation score, cost, and later the test score; the
  search's run gets the best scores at the end. ``MlflowTracker`` uses an explicit ``MlflowClient``
  (no global active run), finds its runs again by tag, so a resumed run logs into the same parent and
  never twice for a node.

Tracking never fails a trial or a run: a tracking error is one warning.

Example::

    writer = tb_writer("runs/r/tensorboard/n3")
    writer.add_scalar("train/loss", 1.2, 10)
    tracker = MlflowTracker("file:/tmp/mlruns", "tweets", run_id="tweets-2026...")
    tracker.node_ended("n3", "n1", plan, result)
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

from trex_ray.spec import Outcome, Plan, Result

log = logging.getLogger(__name__)


def flat_plan(plan: Plan) -> dict[str, Any]:
    """The plan as flat scalar hyper-parameters (``train.learning_rate``, ``data.ops``, ``seed``...)."""
    flat: dict[str, Any] = {f"train.{k}": (v.value if hasattr(v, "value") else v)
                            for k, v in plan.train.model_dump().items()}
    flat = {k: (",".join(v) if isinstance(v, (list, tuple)) else ("" if v is None else v))
            for k, v in flat.items()}
    flat["data.template"] = plan.data.template
    flat["data.ops"] = ",".join(op.op for op in plan.data.ops) or "none"
    for i, op in enumerate(plan.data.ops):
        for key, value in op.params.items():
            scalar = isinstance(value, (int, float, str, bool))
            flat[f"data.{i}.{op.op}.{key}"] = value if scalar else str(value)
    flat["seed"], flat["plan_hash"] = plan.seed, plan.hash
    return flat


# --- TensorBoard -----------------------------------------------------------------------------


def tb_writer(logdir: str | Path | None) -> Any:
    """A tensorboardX ``SummaryWriter`` on ``logdir``, or None (no dir asked, or tensorboardX missing).

    Each writer gets its own file: tensorboardX names it by the second and the host and opens it for
    writing, so a node's scores written in the same second as another writer's (the test score right
    after the validation score) would otherwise wipe that file."""
    if not logdir:
        return None
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        log.warning("tensorboardX is not installed; no TensorBoard records (pip install tensorboardX)")
        return None
    suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
    return SummaryWriter(logdir=str(logdir), flush_secs=10, filename_suffix=suffix)


def tb_node_scored(logdir: str | Path | None, plan: Plan, metric_name: str, result: Result) -> None:
    """A scored node's validation metrics and its plan as hyper-parameters (the HParams dashboard)."""
    writer = tb_writer(logdir)
    if writer is None:
        return
    try:
        from tensorboardX.summary import hparams

        step = result.cost.train_steps
        scores = {f"val/{metric_name}": result.metric, **{f"val/{k}": v for k, v in result.metrics.items()}}
        scores = {k: float(v) for k, v in scores.items() if v is not None and math.isfinite(float(v))}
        for tag, value in scores.items():
            writer.add_scalar(tag, value, step)
        writer.add_scalar("cost/compute_seconds", result.cost.compute_seconds, step)
        for summary in hparams(flat_plan(plan), scores):
            writer.file_writer.add_summary(summary)
    finally:
        writer.close()


def tb_node_tested(logdir: str | Path | None, metric_name: str, scored: dict[str, Any],
                   step: int = 0) -> None:
    writer = tb_writer(logdir)
    if writer is None or scored.get("test_metric") is None:
        return
    try:
        writer.add_scalar(f"test/{metric_name}", float(scored["test_metric"]), step)
    finally:
        writer.close()


# --- MLflow --------------------------------------------------------------------------------------

_STATUS = {Outcome.finished: "FINISHED", Outcome.stopped: "KILLED", Outcome.failed: "FAILED"}


class MlflowTracker:
    """One parent MLflow run per search, one nested run per node (see the module docstring)."""

    def __init__(self, uri: str, experiment: str, run_id: str, task: dict[str, Any] | None = None) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment = found.experiment_id if found else self.client.create_experiment(experiment)
        self.run_id = run_id
        runs = self._runs(f"tags.`trex.run_id` = '{run_id}'")
        self.nodes = {r.data.tags["trex.node_id"]: r.info.run_id for r in runs
                      if "trex.node_id" in r.data.tags}
        parents = [r.info.run_id for r in runs if r.data.tags.get("trex.kind") == "search"]
        self.parent = parents[0] if parents else self._new_parent(task or {})

    def _runs(self, query: str) -> list[Any]:
        return list(self.client.search_runs([self.experiment], filter_string=query, max_results=50_000))

    def _new_parent(self, task: dict[str, Any]) -> str:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment, run_name=self.run_id,
                                     tags={"trex.run_id": self.run_id, "trex.kind": "search"})
        params = {"task": task.get("name"), "model": (task.get("model") or {}).get("id"),
                  "metric": (task.get("metric") or {}).get("name"),
                  "max_nodes": (task.get("budget") or {}).get("max_nodes"),
                  "planner": (task.get("search") or {}).get("planner")}
        self.client.log_batch(run.info.run_id,
                              params=[Param(k, str(v)) for k, v in params.items() if v is not None])
        return str(run.info.run_id)

    def node_ended(self, node_id: str, parent: str | None, plan: Plan, result: Result,
                   metric_name: str) -> None:
        """Log a node that ended (finished, stopped or failed) once; a node logged before is skipped."""
        from mlflow.entities import Metric, Param

        if node_id in self.nodes:
            return
        tags = {"mlflow.parentRunId": self.parent, "trex.run_id": self.run_id, "trex.node_id": node_id,
                "trex.parent": parent or "", "trex.kind": "node", "trex.outcome": result.outcome.value}
        if result.error:
            tags["trex.error"] = result.error[:500]
        run = self.client.create_run(self.experiment, run_name=node_id, tags=tags)
        rid = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric("train_loss", p.train_loss, now, p.step) for p in result.curve
                   if math.isfinite(p.train_loss)]
        metrics += [Metric("val_loss", p.val_loss, now, p.step) for p in result.curve
                    if p.val_loss is not None and math.isfinite(p.val_loss)]
        scores = {f"val_{metric_name}": result.metric, **{f"val_{k}": v for k, v in result.metrics.items()},
                  "compute_seconds": result.cost.compute_seconds, "wall_seconds": result.cost.wall_seconds,
                  "train_steps": result.cost.train_steps, "train_tokens": result.cost.train_tokens}
        metrics += [Metric(k, float(v), now, result.cost.train_steps) for k, v in scores.items()
                    if v is not None and math.isfinite(float(v))]
        params = [Param(k, str(v)) for k, v in flat_plan(plan).items()]
        for i in range(0, len(params), 100):  # MLflow's limits per batch: 100 params, 1000 metrics
            self.client.log_batch(rid, params=params[i:i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(rid, metrics=metrics[i:i + 1000])
        self.client.set_terminated(rid, status=_STATUS[result.outcome])
        self.nodes[node_id] = rid

    def node_tested(self, node_id: str, metric_name: str, scored: dict[str, Any]) -> None:
        rid = self.nodes.get(node_id)
        if rid is not None and scored.get("test_metric") is not None:
            self.client.log_metric(rid, f"test_{metric_name}", float(scored["test_metric"]))

    def finish(self, summary: dict[str, Any]) -> None:
        """The search's run: the best node and its scores, the base model's; then it ends."""
        name, best = summary.get("metric_name", "metric"), summary.get("best") or {}
        values = {f"base_val_{name}": summary.get("base_metric"),
                  f"base_test_{name}": summary.get("base_test_metric"),
                  f"best_val_{name}": best.get("val_metric"), f"best_test_{name}": best.get("test_metric"),
                  "compute_seconds": summary.get("compute_seconds"),
                  "finished_nodes": summary.get("finished_nodes")}
        for key, value in values.items():
            if value is not None:
                self.client.log_metric(self.parent, key, float(value))
        if best.get("node_id"):
            self.client.set_tag(self.parent, "trex.best_node", best["node_id"])
        self.client.set_terminated(self.parent, status="FINISHED")


def mlflow_tracker(uri: str | None, experiment: str, run_id: str,
                   task: dict[str, Any]) -> MlflowTracker | None:
    """The run's MLflow tracker, or None (not asked for, mlflow not installed, or the server unreachable)."""
    if not uri:
        return None
    try:
        return MlflowTracker(uri, experiment, run_id, task)
    except ImportError:
        log.warning("tracking.mlflow is set but mlflow is not installed (pip install mlflow-skinny); "
                    "not tracked")
    except Exception as exc:  # noqa: BLE001 - tracking never stops a run
        log.warning("MLflow tracking at %s is off: %s", uri, str(exc).splitlines()[0] if str(exc) else exc)
    return None
