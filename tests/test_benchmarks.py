"""The benchmark scripts' building blocks (benchmarks/), and the quickest script end to end (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
import sim  # noqa: E402
import space  # noqa: E402
import surrogate_fit  # noqa: E402
from surrogate import CostModel, SurrogateExecutor, SurrogateModel  # noqa: E402

from trex_ray.spec import DataOp, DataRecipe, Plan, TrainMode, TrainRecipe  # noqa: E402


def _plan(
    lr: float = 5e-4, epochs: float = 3, mode: str = "full", warm: bool = False, ops: tuple = ()
) -> Plan:
    return Plan(
        data=DataRecipe(ops=[DataOp(op=o) for o in ops]),
        train=TrainRecipe(mode=TrainMode(mode), learning_rate=lr, epochs=epochs, warm_start=warm),
    )


MODEL = SurrogateModel(start_s=50.0, epoch_s=10.0, eval_s=5.0)


# --- the surrogate -------------------------------------------------------------------------------
def test_surrogate_is_seeded_and_learns_with_epochs():
    ex = SurrogateExecutor(MODEL, CostModel.from_model(MODEL), seed=3)
    a, b = ex.simulate(_plan(epochs=1)), ex.simulate(_plan(epochs=1))
    assert a.metric == b.metric  # same seed, same plan: same answer
    assert (
        SurrogateExecutor(MODEL, CostModel.from_model(MODEL), seed=4).simulate(_plan(epochs=1)).metric
        != a.metric
    )
    short, long = MODEL.metric_at(_plan(), 0.3), MODEL.metric_at(_plan(), 3.0)
    assert 0 < short < long <= 1
    losses = [p.val_loss for p in ex.simulate(_plan(epochs=4)).points]
    assert losses == sorted(losses, reverse=True) or losses[-1] < losses[0]


def test_warm_start_continues_the_parent_and_pays_only_its_epochs():
    ex = SurrogateExecutor(MODEL, CostModel.from_model(MODEL).epochs_only(), seed=0)
    parent = ex.simulate(_plan(epochs=3))
    child = ex.simulate(_plan(epochs=1, warm=True), parent=parent.end_state)
    cold = ex.simulate(_plan(epochs=1))
    assert child.end_state.p > parent.end_state.p > cold.end_state.p
    assert child.cost() == pytest.approx(10.0 * 1 + 5.0)  # one epoch + one evaluation, no start-up
    assert parent.cost() == pytest.approx(10.0 * 3 + 5.0)
    assert CostModel.from_model(MODEL).epochs_only().start_s == 0


def test_high_learning_rates_collapse_to_one_label_and_the_base_is_the_start():
    assert MODEL.metric_at(_plan(lr=0.05), 5.0) == pytest.approx(MODEL.m_maj, abs=0.02)
    assert MODEL.metric_at(_plan(), 0.0) == MODEL.m_base  # the pretrained model, untrained
    lora = _plan(mode="lora", lr=3e-3)
    assert MODEL.val_at(lora, 2.0) < MODEL.val_at(lora, 0.0)  # LoRA learns on a pretrained model


def test_nelder_mead_and_fit_recover_a_known_model():
    best = surrogate_fit.nelder_mead(lambda x: (x[0] - 2) ** 2 + (x[1] + 1) ** 2, [0.0, 0.0])
    assert best == pytest.approx([2.0, -1.0], abs=1e-3)
    truth = SurrogateModel(m_top=0.8, tau=1.0, mu_full=-3.0, sigma=1.0)
    data = []
    for i, (lr, ep) in enumerate([(1e-4, 3), (5e-4, 1), (5e-4, 3), (1e-3, 2), (2e-3, 4), (3e-4, 6)]):
        plan = _plan(lr=lr, epochs=ep)
        p = ep * truth.eff(lr, TrainMode.full)
        data.append(
            surrogate_fit.Observation(
                "s",
                plan,
                None,
                f"s:{i}",
                truth.metric_at(plan, p),
                [(1.0, truth.val_at(plan, p))],
                100.0,
                30.0,
                5.0,
                100,
            )
        )
    fitted = surrogate_fit.fit(data, SurrogateModel())
    assert fitted.fit_info["metric_rmse"] < 0.03


def test_the_committed_fit_loads_and_describes_itself():
    model = SurrogateModel.load()
    assert 0.3 < model.m_top <= 1.0 and model.epoch_s > 0 and model.fit_info["n_trials"] >= 1
    assert "| trial |" in surrogate_fit.describe(model)


def test_check_finds_a_fit_that_differs_from_its_rebuild():
    fit = json.loads(MODEL.to_json())
    assert surrogate_fit.differences(fit, json.loads(MODEL.to_json())) == []
    changed = {**fit, "mu_full": fit["mu_full"] + 0.1, "fit_info": {"n_trials": 3}}
    lines = surrogate_fit.differences(changed, fit)
    assert any(line.startswith("fit.mu_full:") for line in lines) and len(lines) == 2


@pytest.mark.slow
def test_the_committed_fit_is_the_rebuild_of_the_committed_trials():
    out = subprocess.run([sys.executable, str(BENCH / "surrogate.py"), "--check"], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:]


def test_trial_table_headers_are_skipped_and_crashes_left_out(tmp_path):
    plan = space.plan_from_config(space.sample_config(__import__("random").Random(0)), seed=0)
    ok = {"outcome": "finished", "metric": 0.6, "curve": [{"fraction": 1.0, "step": 16, "train_loss": 1.0,
                                                            "val_loss": 0.7}], "checkpoint": "c"}
    crash = {"outcome": "failed", "failure": "error", "error": "boom"}
    rows = [{"header": {"command": "python benchmarks/real_trials.py"}},
            {"name": "a", "parent": None, "plan": plan.model_dump(mode="json"), "result": ok},
            {"name": "b", "parent": None, "plan": plan.model_dump(mode="json"), "result": crash}]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (obs,) = surrogate_fit.observations_from_trials(path)
    assert obs.key == "trials:a" and obs.metric == 0.6 and obs.curve == [(1.0, 0.7)]


def test_the_space_is_one_for_all():
    import random

    rng = random.Random(1)
    configs = [space.sample_config(rng) for _ in range(200)]
    assert all(space.in_space(c) for c in configs)
    assert {c["mode"] for c in configs} == set(space.MODES)
    plan = space.plan_from_config(configs[0], seed=0, epochs=3)
    assert plan.train.batch_size == space.BATCH and plan.train.epochs == 3
    assert plan.train.eval_every_fraction == pytest.approx(1 / 3)


# --- the simulated cluster -------------------------------------------------------------------------
class _Fixed:
    """A strategy that runs the same three plans and stops the second at its first report."""

    name = "fixed"

    def __init__(self) -> None:
        self.todo = [_plan(epochs=2), _plan(epochs=2, lr=1e-3), _plan(epochs=1, ops=("dedup",))]
        self.ended: list[tuple[bool, bool]] = []

    def next_jobs(self, free: int) -> list[sim.JobSpec]:
        out = [sim.JobSpec(tag=i, plan=p, fractions=(0.5, 1.0)) for i, p in enumerate(self.todo[:free])]
        self.todo = self.todo[free:]
        return out

    def on_report(self, job: sim.Job, report: sim.Report) -> sim.Action:
        return sim.Action.STOP if job.spec.tag == 1 else sim.Action.CONTINUE

    def on_end(self, job: sim.Job, last: sim.Report | None, stopped: bool) -> None:
        self.ended.append((last is None, stopped))


def test_engine_runs_slots_reports_and_budget():
    costs = CostModel.from_model(MODEL).epochs_only()
    strategy = _Fixed()
    out = peers.simulate(strategy, SurrogateExecutor(MODEL, costs, 0), 2, 1000.0)
    assert out.trials == 3 and out.stopped == 1 and len(strategy.ended) == 3
    assert out.compute == pytest.approx(
        25 + 10 + 9.7 + 5
    )  # 2 epochs + eval; a stop at half; 0.97 epoch + eval
    assert [c for c, _ in out.curve] == sorted(c for c, _ in out.curve)
    tight = peers.simulate(_Fixed(), SurrogateExecutor(MODEL, costs, 0), 2, 12.0)
    assert tight.compute == pytest.approx(12.0) and not tight.curve


def test_a_strategy_that_selects_by_validation_loss_pays_no_evaluation():
    costs = CostModel.from_model(MODEL).epochs_only()

    class ByVal(_Fixed):
        def next_jobs(self, free: int) -> list[sim.JobSpec]:
            out = [sim.JobSpec(tag=i, plan=p, fractions=(0.5, 1.0), evaluate_at=(), select_by_val=True)
                   for i, p in enumerate(self.todo[:free])]
            self.todo = self.todo[free:]
            return out

        def on_report(self, job: sim.Job, report: sim.Report) -> sim.Action:
            return sim.Action.CONTINUE

    out = peers.simulate(ByVal(), SurrogateExecutor(MODEL, costs, 0), 3, 1000.0)
    assert out.compute == pytest.approx(20 + 20 + 9.7)  # training only: no evaluation charged
    assert out.curve and not out.observed and math.isfinite(out.best_val)


class _Chunks:
    """Two members, each asking for its next chunk at its final report (PBT's shape)."""

    name = "chunks"

    def __init__(self) -> None:
        self.started, self.asked, self.ended = 0, [], []

    def next_jobs(self, free: int) -> list[sim.JobSpec]:
        n = min(free, 2 - self.started)
        out = [sim.JobSpec(tag=f"m{self.started + i}", plan=_plan(epochs=1)) for i in range(n)]
        self.started += n
        return out

    def on_report(self, job: sim.Job, report: sim.Report) -> sim.Action | sim.JobSpec:
        self.asked.append(job.spec.tag)
        if not report.final:
            return sim.Action.CONTINUE
        return sim.JobSpec(tag=f"{job.spec.tag}+", plan=_plan(epochs=1))

    def on_end(self, job: sim.Job, last: sim.Report | None, stopped: bool) -> None:
        self.ended.append((job.spec.tag, last is None, stopped))


def test_a_peer_starts_its_new_trials_first_when_asked_and_hears_of_a_cut_without_a_report():
    """``PeerSearcher``: by default the trials a strategy asked for at a report start first (the
    simulation's order), with ``fresh_first`` its new ones (the real-trial check's); a trial that ended
    with no report to read (cut by the budget) reaches ``on_end`` as stopped, unasked."""
    from strategies import sentiment_task

    from trex_ray.spec import Outcome, Result

    shown: dict[str, tuple[sim.Job, sim.Report | None]] = {}

    class View:
        def latest(self, trial_id: str) -> tuple[sim.Job, sim.Report | None]:
            return shown[trial_id]

    def run(fresh_first: bool, cut_last: bool = False) -> tuple[list[str], _Chunks]:
        strategy, tags = _Chunks(), []
        peer = peers.PeerSearcher(strategy, sentiment_task(0), fresh_first=fresh_first)
        peer.view = View()
        for k in range(4):
            [trial] = peer.next_trials(1)
            spec = peer.spec_of(trial)
            tags.append(spec.tag)
            cut = cut_last and k == 3
            final = sim.Report(1.0, 1.0, 0.5, 0.5, 0.6, final=True, diverged=False)
            shown[trial.node_id] = (sim.Job(spec, None, 0.0), None if cut else final)  # type: ignore[arg-type]
            peer.on_result(trial.node_id, Result(outcome=Outcome.stopped if cut else Outcome.finished))
        return tags, strategy

    assert run(False)[0] == ["m0", "m0+", "m0++", "m0+++"]
    tags, strategy = run(True, cut_last=True)
    assert tags == ["m0", "m1", "m0+", "m1+"] and strategy.asked == ["m0", "m1", "m0+"]
    assert strategy.ended[-1] == ("m1+", True, True) and strategy.ended[0] == ("m0", False, False)


def test_curve_helpers():
    curve = [(10.0, 0.5), (30.0, 0.7), (50.0, 0.65)]
    assert (
        sim.best_at(curve, 5.0) is None and sim.best_at(curve, 40.0) == 0.7 and sim.best_at(curve, 60) == 0.65
    )
    assert sim.compute_to(curve, 0.6) == 30.0 and math.isinf(sim.compute_to(curve, 0.9))


@pytest.mark.parametrize("name", ["trex", "greedy", "random", "tune-tpe-asha", "tune-pbt"])
def test_every_strategy_runs_on_a_small_budget(name):
    pytest.importorskip("optuna")
    import search_efficiency

    out = search_efficiency.run_one(name, 0, MODEL, CostModel.from_model(MODEL).epochs_only(), 4, 400.0)
    assert out.trials >= 4 and out.compute == pytest.approx(400.0, rel=0.05) and out.curve


@pytest.mark.slow
def test_real_check_runs_real_trials_within_the_budget_and_scores_the_pick(tmp_path):
    """PBT on real trials of the tiny model, through the production trial loop (``real_peers.py``): compute
    is the trials' own seconds less the validation scoring PBT never reads, a trial running at the budget
    is cut, its population's new members run before their continuations, and the pick is scored on the
    test rows."""
    import real_check
    from real_peers import run_peer
    from strategies import tune_pbt

    task = real_check.check_task(0, test_rows=32, model="builtin:tiny-llama")
    assert task.data.eval.limit == 32 and task.data.val_size == 128 and task.model.id == "builtin:tiny-llama"
    engine = real_check.RealEngine(20.0, tmp_path, 0, task=task)
    out = run_peer(engine, tune_pbt(0))
    assert out.trials >= 2 and out.compute >= 20.0 and not out.observed
    assert [row["tag"] for row in out.log[:2]] == ["p0000", "p0001"]  # a new member before a continuation
    assert out.compute == pytest.approx(sum(row["seconds"] for row in out.log), abs=0.1 * len(out.log))
    finished = [row for row in out.log if row["outcome"] == "finished"]
    assert finished and all(row["uncharged_s"] > 0 for row in finished)
    assert out.log[-1]["outcome"] == "stopped" or out.log[-1]["compute"] >= 20.0
    scored = engine.score_pick(out, "tune-pbt")
    assert scored["test_rows"] == 32 and 0.0 <= scored["test_metric"] <= 1.0 and scored["val_loss"] > 0


@pytest.mark.slow
def test_real_check_runs_trex_through_its_production_loop_within_the_budget(tmp_path):
    """trex on real trials of the tiny model (``real_tree.py``): the Orchestrator runs them here, the
    budget ends the search, and what it measured is the pick."""
    import real_check
    from real_tree import run_tree
    from strategies import trex

    task = real_check.check_task(0, test_rows=32, model="builtin:tiny-llama")
    engine, strategy = real_check.RealEngine(20.0, tmp_path, 0, task=task), trex(0)
    try:
        out = run_tree(engine, strategy)
        tree = strategy.researcher.tree
    finally:
        strategy.close()
    assert out.trials >= 2 and out.compute >= 20.0 and out.log[0]["tag"] == "n0"  # the base model first
    assert out.compute == pytest.approx(sum(row["seconds"] for row in out.log), abs=0.1 * len(out.log))
    ended = {row["tag"]: row["outcome"] for row in out.log}
    assert all(tree.get(node).result.outcome.value == outcome for node, outcome in ended.items())
    assert out.observed and out.pick["metric"] == max(m for _, m in out.observed)
    scored = engine.score_pick(out, "trex")
    assert scored["test_rows"] == 32 and 0.0 <= scored["test_metric"] <= 1.0


def test_summary_ratio_is_trex_over_the_best_peer():
    import search_efficiency

    def outcome(curve):
        return sim.Outcome(curve=curve, observed=curve, trials=1)

    runs = {
        "trex": {0: outcome([(100.0, 0.8)])},
        "greedy": {0: outcome([(400.0, 0.8)])},
        "random": {0: outcome([(200.0, 0.805)])},
    }
    s = search_efficiency.summarize(runs, budget=1000.0, tolerance=0.01)
    assert s["per_seed"][0]["best_peer"] == "random" and s["compute_to_target_ratio"] == 0.5
    assert s["censored_seeds"] == 0 and s["trex_beats_best_peer_seeds"] == "1/1"
    assert s["trex_loses_to_best_peer_seeds"] == "0/1"


# --- overhead, utilization, gpu_train building blocks ------------------------------------------------
def test_decision_latency_on_a_small_synthetic_tree():
    import overhead

    row = overhead.decision_latency(150, decisions=5, warmup=1)
    assert row["nodes"] == 150 and row["decisions"] == 5 and row["p50_ms"] > 0


def test_ideal_busy_and_measure():
    import utilization

    assert utilization.ideal_busy([4.0, 4.0, 4.0, 4.0], 2) == pytest.approx(1.0)
    assert utilization.ideal_busy([8.0, 1.0, 1.0], 2) == pytest.approx(10 / 16)

    class Node:
        def __init__(self, i, start, end):
            from trex_ray.spec import Outcome, Result

            self.id, self.started_at = f"n{i}", start - 0.5
            self.result = Result(
                outcome=Outcome.finished,
                metric=0.5,
                provenance={"held": {"start": start, "end": end, "gpus": 1}},
            )

    m = utilization.measure([Node(0, 0.0, 10.0), Node(1, 0.0, 5.0), Node(2, 5.0, 10.0)], gpus=2)
    assert m["busy_fraction"] == pytest.approx(1.0) and m["start_to_gpu_s_median"] == pytest.approx(0.5)


def test_gpu_train_compare_and_a_tiny_raw_step():
    pytest.importorskip("transformers")
    import gpu_train

    row = gpu_train.run_raw("tiny", "cpu", warmup=1, steps=1)
    assert row["tokens_per_s"] > 0 and len(row["losses"]) == 2 and row["mfu"] is None
    ds = {**row, "variant": "ds_trex", "tokens_per_s": row["tokens_per_s"] * 0.9}
    entry = gpu_train.compare([row, ds], ["tiny"])["tiny"]
    assert entry["ds_over_raw"] == pytest.approx(0.9) and entry["ds_trex_loss_rel_diff_first10"] == 0.0


@pytest.mark.slow
def test_search_efficiency_quick_prints_its_json_last(tmp_path):
    pytest.importorskip("optuna")
    cmd = [
        sys.executable,
        str(BENCH / "search_efficiency.py"),
        "--quick",
        "--json",
        "--seeds",
        "2",
        "--results-dir",
        str(tmp_path),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
    assert (tmp_path / "search_efficiency-quick-epochs-dev.png").stat().st_size > 0
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["benchmark"] == "search_efficiency" and summary["compute_to_target_ratio"] > 0
    assert summary["simulated"] is True and summary["seed_set"] == "dev"
    assert set(summary["strategies"]) == {"trex", "greedy", "random", "tune-tpe-asha", "tune-pbt"}


def test_trial_start_reads_a_process_start_time_from_proc() -> None:
    import time

    import psutil
    import trial_start

    started = trial_start._process_start()
    assert abs(started - psutil.Process().create_time()) < 1.0 and started < time.time()


def test_warm_continuation_summary_counts_divergence_as_a_loss() -> None:
    import warm_continuation

    def cell(metric, failure=None):  # noqa: ANN001, ANN202
        return {"metric": metric, "failure": failure, "outcome": "failed" if failure else "finished"}

    rows = [{"parent_metric": 0.5, "warmup_0.0": cell(None, "diverged"), "warmup_0.2": cell(0.7)},
            {"parent_metric": 0.6, "warmup_0.0": cell(0.65), "warmup_0.2": cell(0.62)}]
    out = warm_continuation.summarize(rows, [0.0, 0.2])
    assert out["warmup_0.0"]["diverged"] == 1 and out["warmup_0.2"]["diverged"] == 0
    assert out["warmup_0.0"]["mean_metric_gain_over_parent"] == pytest.approx((-0.5 + 0.05) / 2)
    assert out["warmup_0.2"]["mean_metric_gain_over_parent"] == pytest.approx((0.2 + 0.02) / 2)
    assert out["pairs_where_second_beats_first"] == 1 and out["pairs"] == 2
