"""research/rates.py: the learning-rate model of the heuristic planner, and the plans it leads to."""

from __future__ import annotations

import math

from factories import TreeBuilder, finished, make_plan, make_task

from trex_ray.research.heuristic import RANDOM_INIT, HeuristicPlanner
from trex_ray.research.rates import MIN_GAP, TRUST, RatePoint, suggest_rates
from trex_ray.spec import TrainMode
from trex_ray.tree import ROOT_ID

RULES = {"full": 3e-4, "lora": 3e-3}


def x_of(mode: str, lr: float) -> float:
    return math.log10(lr / RULES[mode])


def test_one_result_is_not_enough_to_fit():
    assert suggest_rates([], RULES) == []
    assert suggest_rates([RatePoint("full", 3e-4, 0.4)], RULES) == []


def test_a_lower_full_rate_that_won_moves_both_modes_down():
    points = [RatePoint("full", 3e-4, 0.40), RatePoint("full", 7.5e-5, 0.63), RatePoint("full", 6e-4, 0.39),
              RatePoint("lora", 3e-3, 0.37)]
    bets = {s.mode: s for s in suggest_rates(points, RULES)}
    assert set(bets) == {"full", "lora"}
    assert bets["full"].lr < 3e-4
    # LoRA was tried only at its rule's rate: what full fine-tuning taught moves it down too
    assert bets["lora"].lr < 3e-3 * 10**-0.3
    assert bets["lora"].mean > 0.45  # the full result is shared across the modes


def test_bets_keep_away_from_tried_rates_and_inside_the_trust_region():
    points = [RatePoint("full", 3e-4, 0.40), RatePoint("lora", 3e-3, 0.38), RatePoint("full", 1e-4, 0.45)]
    tried = [(p.mode, x_of(p.mode, p.lr)) for p in points]
    for s in suggest_rates(points, RULES, limit=2):
        x = x_of(s.mode, s.lr)
        assert all(abs(x - t) >= MIN_GAP - 0.02 for m, t in tried if m == s.mode)  # -0.02: lr rounding
        assert min(abs(x - t) for _, t in tried) <= TRUST + 0.02


def test_the_root_proposes_the_rate_models_bets_once_drafts_have_results():
    b = TreeBuilder()
    b.root()
    full, lora = RANDOM_INIT.full, RANDOM_INIT.lora  # the tree has no profile: a random-init model's rules
    for lr, mode, metric in [(full, "full", 0.40), (full / 4, "full", 0.65), (lora, "lora", 0.38),
                             (full * 2, "full", 0.39)]:
        b.child(ROOT_ID, finished(metric), plan=make_plan(lr, mode=mode))
    plans = HeuristicPlanner(make_task()).propose(b.tree, b.tree.root, k=12)
    bets = [p for p in plans if "rate model" in p.rationale]
    assert {p.train.mode for p in bets} == {TrainMode.full, TrainMode.lora}
    assert all(not p.train.warm_start for p in bets)
    assert all(p.train.learning_rate < (full if p.train.mode is TrainMode.full else lora) for p in bets)


def test_a_refinement_starts_with_the_rate_models_bets():
    b = TreeBuilder()
    b.root()
    full = RANDOM_INIT.full
    b.child(ROOT_ID, finished(0.40), plan=make_plan(full))
    b.child(ROOT_ID, finished(0.38), plan=make_plan(RANDOM_INIT.lora, mode="lora"))
    best = b.child(ROOT_ID, finished(0.65), plan=make_plan(full / 4))
    plans = HeuristicPlanner(make_task()).propose(b.tree, b.tree.get(best), k=3)
    assert "rate model" in plans[0].rationale and not plans[0].train.warm_start
