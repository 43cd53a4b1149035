"""The one search space of the search benchmark, written down before any trial was fitted.

Every strategy searches it: the Tune peers sample it (``tune_space``), random search draws from it
(``sample_config``), the real trials that the surrogate is fitted on are points of it
(``real_trials.py``), and trex's planner writes plans inside it (its drafts come from rules about the
model, ``research/heuristic.py`` ``draft_rates``, never from this file or the fit).

What a careful user of a 135 M pretrained model on 128 training rows would search:

* ``mode``: full fine-tuning or LoRA (r 16, alpha 32);
* ``lr``: log-uniform over [1e-5, 1e-2] for both modes (full fine-tuning of small LMs is usually
  tuned in 1e-5..1e-3, LoRA in 1e-4..1e-2: one range that covers both);
* ``epochs``: 1-4 (16 steps of 8 rows an epoch; batch 8, the task's one batch size);
* ``template``: the model's chat template (``auto``) or one of the plain prompt templates;
* ``weight_decay``: 0 or 0.1; each cleaning op on or off.

The task: ``tweet_sentiment`` (``ftbench/registry.py`` ``real_task``: 128 train, 128 validation,
320 test rows) on the embedded ``builtin:smollm2-135m``.
"""

from __future__ import annotations

import math
import random
from typing import Any

from trex_ray.spec import DataOp, DataRecipe, EvalRecipe, Plan, TrainMode, TrainRecipe

TASK = "tweet_sentiment"
LR_RANGE = (1e-5, 1e-2)
EPOCHS = (1, 4)
BATCH = 8
MODES = ("full", "lora")
TEMPLATES = ("auto", "plain", "instruct", "qa")
WEIGHT_DECAYS = (0.0, 0.1)
OPS = ("dedup", "label_noise_filter", "length_filter")
OP_PARAMS: dict[str, dict[str, Any]] = {"length_filter": {"max_words": 40}}
LORA = {"lora_r": 16, "lora_alpha": 32}


def tune_space() -> dict[str, Any]:
    """The space in Ray Tune's words (the Tune peers search it through their own searchers)."""
    from ray import tune

    return {
        "mode": tune.choice(list(MODES)),
        "lr": tune.loguniform(*LR_RANGE),
        "epochs": tune.randint(EPOCHS[0], EPOCHS[1] + 1),
        "template": tune.choice(list(TEMPLATES)),
        "weight_decay": tune.choice(list(WEIGHT_DECAYS)),
        **{op: tune.choice([False, True]) for op in OPS},
    }


def sample_config(rng: random.Random) -> dict[str, Any]:
    """One configuration drawn uniformly from the space (log-uniform lr)."""
    lo, hi = math.log(LR_RANGE[0]), math.log(LR_RANGE[1])
    return {
        "mode": rng.choice(MODES),
        "lr": math.exp(rng.uniform(lo, hi)),
        "epochs": rng.randint(*EPOCHS),
        "template": rng.choice(TEMPLATES),
        "weight_decay": rng.choice(WEIGHT_DECAYS),
        **{op: rng.random() < 0.5 for op in OPS},
    }


def in_space(config: dict[str, Any]) -> bool:
    return (
        config["mode"] in MODES
        and LR_RANGE[0] * 0.999 <= config["lr"] <= LR_RANGE[1] * 1.001
        and EPOCHS[0] <= config["epochs"] <= EPOCHS[1]
        and config.get("template", "auto") in TEMPLATES
        and config.get("weight_decay", 0.0) in WEIGHT_DECAYS
    )


def report_every(epochs: float) -> float:
    """Validation loss once an epoch, at least twice a run (what Tune's peers and the fit see)."""
    return min(0.5, 1.0 / max(1.0, epochs))


def plan_from_config(
    config: dict[str, Any],
    seed: int,
    epochs: float | None = None,
    warm: bool = False,
    backend: str = "auto",
    **train: Any,
) -> Plan:
    """The Plan of a configuration; ``epochs`` overrides its epochs (PBT's chunks, warm continuations)."""
    ops = [DataOp(op=op, params=OP_PARAMS.get(op, {})) for op in OPS if config.get(op)]
    mode = TrainMode(config["mode"])
    n = float(epochs if epochs is not None else config["epochs"])
    recipe = TrainRecipe(
        mode=mode,
        learning_rate=float(min(1.0, config["lr"])),
        epochs=n,
        batch_size=BATCH,
        weight_decay=float(config.get("weight_decay", 0.0)),
        warm_start=warm,
        eval_every_fraction=report_every(n),
        **(LORA if mode is TrainMode.lora else {}),
        **train,
    )
    data = DataRecipe(ops=ops, template=config.get("template", "auto"))
    return Plan(data=data, train=recipe, eval=EvalRecipe(backend=backend), seed=seed)
