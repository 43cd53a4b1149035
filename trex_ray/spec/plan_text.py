"""Plans as short text, for people and prompts: ``describe_plan`` and ``plan_changes``.

Example::

    describe_plan(plan)          # 'lora lr=0.001 ep=1 r=16 dedup'
    plan_changes(parent, child)  # ['train.learning_rate=0.003', '+data.dedup']
"""

from __future__ import annotations

from trex_ray.spec.plan import Plan, TrainMode


def describe_plan(plan: Plan) -> str:
    """A short human summary of a plan."""
    t = plan.train
    if t.mode is TrainMode.none:
        return "base model"
    parts = [t.mode.value, f"lr={t.learning_rate:g}", f"ep={t.epochs:g}"]
    if t.mode is TrainMode.lora:
        parts.append(f"r={t.lora_r}")
    if t.warm_start:
        parts.append("warm")
    if t.weight_decay:
        parts.append(f"wd={t.weight_decay:g}")
    parts += [o.op for o in plan.data.ops]
    if plan.data.template not in ("auto", "plain"):
        parts.append(f"tpl={plan.data.template}")
    return " ".join(parts)


def plan_changes(parent: Plan, child: Plan) -> list[str]:
    """What a child plan changes relative to its parent, e.g. ``train.learning_rate=0.003``."""
    changes = []
    for section in ("train", "eval"):
        a = getattr(parent, section).model_dump(mode="json")
        b = getattr(child, section).model_dump(mode="json")
        changes += [f"{section}.{k}={b[k]}" for k in sorted(b) if a.get(k) != b[k]]
    before = {o.op for o in parent.data.ops}
    after = {o.op for o in child.data.ops}
    changes += [f"+data.{op}" for op in sorted(after - before)]
    changes += [f"-data.{op}" for op in sorted(before - after)]
    if parent.data.template != child.data.template:
        changes.append(f"data.template={child.data.template}")
    return changes
