"""Run directories without training: events written through ``Store.append`` as a real run writes them.

``RunBuilder`` emits run_started / node_added / node_started / node_progress / node_finished /
node_pruned / insight / run_finished with realistic Results (curves, costs, samples, failures),
and can write ``nodes/<id>/train.log``. ``demo_run`` builds a small finished run with every kind
of ending; ``synthetic_run`` a large one (thousands of nodes) for the explorer's speed tests.
``payload`` plants a string in every free-text field a run can carry (dataset samples, plan
rationale, insight, error, log, task description, a metric name).

Example::

    tree = demo_run(tmp_path / "run", payload="<script>window.__pwned=1</script>")
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from factories import make_plan, make_task, synthetic_result

from trex_ray.research.insights import distill
from trex_ray.spec import Cost, FailureKind, Outcome, Plan, Progress, Result, TrainMode
from trex_ray.store import Store
from trex_ray.tree import Event, EventKind, SearchTree

T0 = 1_760_000_000.0  # a fixed clock, so that runs are reproducible


class RunBuilder:
    def __init__(self, run_dir: str | Path, run_id: str | None = None, snapshot_every: int = 10_000) -> None:
        self.run_dir = Path(run_dir)
        self.store = Store(self.run_dir, snapshot_every=snapshot_every)
        self.tree = SearchTree()
        self.clock = T0
        self.run_id = run_id or self.run_dir.name

    def emit(self, kind: EventKind, node_id: str | None = None, dt: float = 1.0, **payload: Any) -> Event:
        self.clock += dt
        event = self.store.append(Event(kind=kind, node_id=node_id, payload=payload, time=self.clock))
        self.tree.apply(event)
        self.store.maybe_snapshot(self.tree)
        return event

    def start_run(self, description: str | None = None) -> None:
        task = make_task().model_dump(mode="json")
        if description is not None:
            task["description"] = description
        self.emit(EventKind.run_started, run_id=self.run_id, task=task,
                  profile={"rows": 800, "noise_estimate": 0.1, "duplicate_fraction": 0.05})

    def add(self, parent: str | None, plan: Plan) -> str:
        node_id = self.tree.next_id()
        self.emit(EventKind.node_added, node_id, dt=0.1, parent=parent, plan=plan.model_dump(mode="json"))
        return node_id

    def start(self, node_id: str) -> None:
        self.emit(EventKind.node_started, node_id, dt=0.2, attempt=self.tree.get(node_id).attempts + 1)

    def progress(self, node_id: str, point: Progress) -> None:
        self.emit(EventKind.node_progress, node_id, dt=2.0, progress=point.model_dump(mode="json"))

    def finish(self, node_id: str, result: Result, report_progress: bool = True,
               insight: bool = True) -> None:
        """Start the node, report its curve point by point, end it, and distill an insight."""
        self.start(node_id)
        if report_progress:
            for point in result.curve:
                self.progress(node_id, point)
        self.complete(node_id, result, insight)

    def complete(self, node_id: str, result: Result, insight: bool = True) -> None:
        """End a node that is running: its result, then (if asked) an insight."""
        self.emit(EventKind.node_finished, node_id, dt=result.cost.wall_seconds / 4,
                  result=result.model_dump(mode="json"))
        if insight:
            text, facts = distill(self.tree, self.tree.get(node_id))
            self.emit(EventKind.insight, node_id, dt=0.01, text=text, facts=facts)

    def prune(self, node_id: str, reason: str) -> None:
        self.emit(EventKind.node_pruned, node_id, dt=0.01, reason=reason)

    def end(self, reason: str = "budget: max_nodes reached") -> SearchTree:
        self.emit(EventKind.run_finished, reason=reason)
        self.store.snapshot(self.tree)
        return self.tree

    def write_log(self, node_id: str, text: str) -> Path:
        path = self.run_dir / "nodes" / node_id / "train.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


# --- realistic results --------------------------------------------------------------------
REVIEWS = [
    ("the film was a delight from start to finish", "positive"),
    ("dull plot, wooden acting, I left early", "negative"),
    ("an uneven but ultimately moving story", "positive"),
    ("the sound was broken and the seats were worse", "negative"),
]


def with_samples(result: Result, plan: Plan, payload: str | None = None, seed: int = 0) -> Result:
    """Attach sample predictions: right in proportion to the metric, the payload in one of them."""
    rng = random.Random(f"{plan.hash}-{seed}")
    samples = []
    for i, (review, label) in enumerate(REVIEWS):
        right = rng.random() < (result.metric or 0.0)
        pred = label if right else ("negative" if label == "positive" else "positive")
        samples.append({"prompt": f"{review}\n=>", "prediction": pred, "target": label})
        if payload is not None and i == 0:
            samples[0] = {"prompt": f"review: {payload}\n=>", "prediction": payload, "target": label}
    return result.model_copy(update={"samples": samples, "eval_backend": "hf"})


def realistic(plan: Plan, payload: str | None = None, seed: int = 0) -> Result:
    result = synthetic_result(plan)
    if result.outcome is Outcome.finished:
        result = with_samples(result, plan, payload, seed)
        steps = int(60 * plan.train.epochs)
        result = result.model_copy(update={"cost": result.cost.model_copy(
            update={"train_steps": steps, "train_tokens": steps * 16 * 48})})
    return result


def stopped_result(val_losses: tuple[float, ...] = (1.9, 1.7)) -> Result:
    curve = [Progress(fraction=0.25 * (i + 1), step=30 * (i + 1), train_loss=v * 0.92, val_loss=v)
             for i, v in enumerate(val_losses)]
    return Result(outcome=Outcome.stopped, curve=curve,
                  cost=Cost(wall_seconds=9.0, compute_seconds=18.0, train_steps=30 * len(val_losses)))


def error_result(message: str) -> Result:
    return Result(outcome=Outcome.failed, failure=FailureKind.error, error=message,
                  cost=Cost(wall_seconds=2.0, compute_seconds=4.0))


# --- runs -----------------------------------------------------------------------------------
def plan(lr: float, template: str = "plain", **kwargs: Any) -> Plan:
    """``make_plan`` plus a prompt template."""
    p = make_plan(lr, **kwargs)
    return p.model_copy(update={"data": p.data.model_copy(update={"template": template})})


def demo_run(run_dir: str | Path, payload: str | None = None, finish: bool = True) -> SearchTree:
    """A small finished run (14 nodes) with finished, pruned, stopped and failed nodes, logs and insights."""
    b = RunBuilder(run_dir, run_id=Path(run_dir).name if payload is None else payload)
    b.start_run(description=payload)
    text = payload or ""
    root = b.add(None, make_plan(mode=TrainMode.none, rationale="the base model, as it is"))
    b.finish(root, realistic(b.tree.get(root).plan, payload))
    drafts = [
        make_plan(2e-3, epochs=2, rationale="baseline: full fine-tune, moderate learning rate"),
        make_plan(2e-3, epochs=2, ops=["dedup", "label_noise_filter"],
                  rationale=f"clean the data first {text}"),
        make_plan(5e-3, mode="lora", epochs=2, lora_r=16, lora_alpha=32,
                  rationale="LoRA: is it enough here?"),
        make_plan(5e-4, epochs=3, rationale="a slower, longer full fine-tune"),
        make_plan(2e-2, epochs=2, rationale="an aggressive learning rate"),
    ]
    ids = [b.add(root, p) for p in drafts]
    for node_id in ids:
        b.finish(node_id, realistic(b.tree.get(node_id).plan, payload))
    b.prune(ids[3], "lost to its siblings (successive halving, eta=3)")
    best = ids[1]
    kids = [
        make_plan(2e-3, epochs=1, warm_start=True, ops=["dedup", "label_noise_filter"],
                  rationale="under-fit: warm-start and train one more epoch"),
        make_plan(2e-3, epochs=2, weight_decay=0.01, ops=["dedup", "label_noise_filter"],
                  rationale="regularise with weight decay"),
        plan(2e-3, epochs=2, ops=["dedup", "label_noise_filter", "length_filter"], template="instruct",
                  rationale="instruct template and a length filter"),
    ]
    kid_ids = [b.add(best, p) for p in kids]
    b.finish(kid_ids[0], realistic(b.tree.get(kid_ids[0]).plan, payload))
    b.finish(kid_ids[1], stopped_result())
    b.finish(kid_ids[2], realistic(b.tree.get(kid_ids[2]).plan, payload))
    grand = b.add(kid_ids[2], plan(3e-3, epochs=2, warm_start=True, template="instruct",
                                        ops=["dedup", "label_noise_filter", "length_filter"],
                                        rationale="a gentle warm-started refinement"))
    b.finish(grand, realistic(b.tree.get(grand).plan, payload))
    broken = b.add(ids[0], make_plan(1e-3, epochs=2, ops=["subsample"],
                                     rationale="half the data, same recipe"))
    b.finish(broken, error_result(f"RuntimeError: worker died during evaluation {text}"))
    lora2 = b.add(ids[2], make_plan(3e-3, mode="lora", epochs=3, lora_r=32, lora_alpha=64,
                                    rationale="bigger rank"))
    b.finish(lora2, realistic(b.tree.get(lora2).plan, payload))
    b.finish(b.add(ids[2], make_plan(4e-3, mode="lora", epochs=2, lora_r=8, rationale="smaller rank")),
             stopped_result((2.1, 1.95)))
    for node_id in (root, ids[0], best, kid_ids[2], broken):
        b.write_log(node_id, _log_text(b.tree, node_id, payload))
    if payload is not None:
        b.emit(EventKind.insight, None, dt=0.01, text=f"global insight {payload}", facts={"kind": "note"})
    return b.end() if finish else b.tree


def _log_text(tree: SearchTree, node_id: str, payload: str | None) -> str:
    node = tree.get(node_id)
    lines = [f"[trex] node {node_id}: {node.plan.train.mode.value} lr={node.plan.train.learning_rate:g}"]
    for p in node.progress:
        lines.append(f"step {p.step:>4}  train_loss {p.train_loss:.4f}  val_loss {p.val_loss}")
    if payload is not None:
        lines.append(f"tokenizer warning: {payload}")
    lines.append(f"[trex] done: {node.status.value} metric={node.metric}")
    return "\n".join(lines) + "\n"


def synthetic_run(run_dir: str | Path, n: int = 2000, seed: int = 0, finish: bool = False) -> SearchTree:
    """A large run grown at random (seeded): mostly finished nodes, some pruned, stopped, failed,
    and, unless ``finish``, a few running and pending ones at the frontier."""
    rng = random.Random(seed)
    b = RunBuilder(run_dir)
    b.start_run()
    root = b.add(None, make_plan(mode=TrainMode.none))
    b.finish(root, realistic(b.tree.get(root).plan), report_progress=False, insight=False)
    open_ids = [root]
    modes = ["full", "full", "lora"]
    ops_pool = ["dedup", "label_noise_filter", "length_filter", "subsample"]
    while len(b.tree) < n:
        parent = rng.choice(open_ids[-40:] if rng.random() < 0.7 else open_ids)
        new = make_plan(
            round(10 ** rng.uniform(-3.6, -1.8), 6), mode=rng.choice(modes), epochs=rng.choice([1, 2, 3]),
            ops=rng.sample(ops_pool, rng.randint(0, 2)), warm_start=parent != root and rng.random() < 0.3,
            seed=len(b.tree), rationale=f"idea {len(b.tree)}: vary the recipe of {parent}")
        node_id = b.add(parent, new)
        left = n - len(b.tree)
        if not finish and left < 12:
            if left % 2:
                b.start(node_id)
            continue
        roll = rng.random()
        result = stopped_result() if roll < 0.08 else error_result("CUDA out of memory") if roll < 0.11 \
            else realistic(new, seed=len(b.tree))
        b.finish(node_id, result, report_progress=False, insight=rng.random() < 0.2)
        node = b.tree.get(node_id)
        if node.expandable:
            if rng.random() < 0.15:
                b.prune(node_id, "lost to its siblings")
            else:
                open_ids.append(node_id)
    return b.end("budget: max_nodes reached") if finish else b.tree
