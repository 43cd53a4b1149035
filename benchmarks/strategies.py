"""The search strategies compared by ``search_efficiency.py``, each on the simulated cluster of ``sim.py``.

* ``TreeSearch`` — trex: the real ``Researcher`` with ``UCTPolicy`` and ``HeuristicPlanner`` (its
  journal on tmpfs) in its production trial loop (``Orchestrator`` over ``sim_executor.SimExecutor``),
  early stopping through ``on_progress``, warm starts paying only their epochs;
* ``Greedy`` — AIDE-style: the same Researcher and planner, a policy that always improves the
  best node after ``drafts`` drafts from the root (no pruning, no early stopping);
* ``RandomSearch`` — configurations drawn from ``SPACE``, each trained to the end;
* ``TuneTPEASHA`` — Ray Tune's own ``OptunaSearch`` (TPE) and ``ASHAScheduler`` objects, driven the
  way Tune's controller drives them (suggest, on_trial_result, on_trial_complete);
* ``TunePBT`` — Ray Tune's own ``PopulationBasedTraining`` scheduler, driven through a stub controller:
  a member that is exploited restarts from its clone's checkpoint (PBT's own reuse).

Every Tune-style strategy searches ``SPACE`` (the plans the heuristic planner can write: mode, lr,
epochs, the cleaning ops, template, weight decay) and reports validation loss every epoch.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sim import Action, Job, JobSpec, Report, SimCluster
from sim import Outcome as SimOutcome
from sim_executor import SimExecutor
from space import (
    EPOCHS,
    LR_RANGE,
    OPS,
    TASK,
    TEMPLATES,
    WEIGHT_DECAYS,
    plan_from_config,
    sample_config,
    tune_space,
)
from surrogate import State, SurrogateExecutor

from trex_ray.research import Researcher
from trex_ray.spec import (
    Budget,
    Decision,
    Progress,
    TaskSpec,
)
from trex_ray.tree import Node, SearchTree, UCTPolicy
from trex_ray.tree.policy import MAX_CHILDREN

log = logging.getLogger(__name__)



def sentiment_task(seed: int) -> TaskSpec:
    """The real built-in task every strategy searches, with an unbounded node budget (the simulated
    compute budget ends the search)."""
    from trex_ray.ftbench.registry import builtin_task

    task = builtin_task(TASK)
    return task.model_copy(
        update={"budget": Budget(max_nodes=100_000), "search": task.search.model_copy(update={"seed": seed})}
    )


@functools.cache
def task_profile() -> dict[str, Any]:
    """What the planner sees of the task, as in a real run (``execute/data.py`` ``profile``): the data's
    sizes, noise and duplicates, and the model's facts (135 M parameters, pretrained, chat template)."""
    from trex_ray.execute.profile import profile

    return profile(sentiment_task(0))


def _epoch_fractions(epochs: float) -> tuple[float, ...]:
    n = max(1, math.ceil(epochs - 1e-9))
    return tuple(min(1.0, k / epochs) for k in range(1, n + 1))


# --- trex and the greedy policy --------------------------------------------------------------
class GreedyPolicy:
    """AIDE-style: ``drafts`` drafts from the root, then always improve the best node; repair a failed
    node first (AIDE's debug step); no pruning and no early stopping."""

    def __init__(self, drafts: int = 5) -> None:
        self.drafts = drafts

    def select(self, tree: SearchTree) -> Node | None:
        root = tree.root
        if root is None:
            return None
        for node in tree:
            if UCTPolicy._repairable(node):
                return node
        if len(root.children) < self.drafts:
            return root
        scored = [n for n in tree if n.expandable and n.parent is not None and len(n.children) < MAX_CHILDREN]
        if not scored:
            return root if len(root.children) < MAX_CHILDREN else None
        return max(scored, key=lambda n: (n.metric or 0.0, int(n.id[1:])))

    def prune(self, tree: SearchTree, node: Node) -> list[Node]:
        return []

    def decide(self, tree: SearchTree, node: Node, progress: Progress) -> Decision:
        return Decision.CONTINUE


class TreeSearch:
    """The real Researcher, run by its production trial loop: on the simulated cluster (``run``) or on
    real trials (``real_tree.run_tree``). ``policy``: None for trex's UCTPolicy."""

    name = "trex"

    def __init__(self, seed: int, policy: Any = None, name: str | None = None) -> None:
        self.seed = seed
        self.dir = Path(
            tempfile.mkdtemp(prefix="trex-sim-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
        )
        self.researcher = Researcher.open(
            self.dir / "run", sentiment_task(seed), profile=task_profile(), run_id="sim"
        )
        if policy is not None:
            self.researcher.policy = policy
        self.name = name or self.name
        self.states: dict[str, State] = {}

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, surrogate: SurrogateExecutor, slots: int, budget: float) -> SimOutcome:
        """The search on the simulated cluster, through trex's production trial loop."""
        from trex_ray.research.orchestrator import FixedSlots, Orchestrator

        sim = SimExecutor(SimCluster(surrogate, budget), self.researcher.on_progress, self.states)
        orchestrator = Orchestrator(self.researcher, sim, FixedSlots(slots), score_tests=False)
        orchestrator.run(stop=lambda: sim.exhausted)
        return sim.cluster.out


def trex(seed: int) -> TreeSearch:
    return TreeSearch(seed)


def greedy(seed: int) -> TreeSearch:
    return TreeSearch(seed, policy=GreedyPolicy(), name="greedy")


# --- random search --------------------------------------------------------------------------
class RandomSearch:
    name = "random"

    def __init__(self, seed: int) -> None:
        self.seed, self.rng = seed, random.Random(seed)

    def next_jobs(self, free: int) -> list[JobSpec]:
        out = []
        for _ in range(free):
            plan = plan_from_config(sample_config(self.rng), self.seed)
            out.append(JobSpec(tag=None, plan=plan, fractions=_epoch_fractions(plan.train.epochs)))
        return out

    def on_report(self, job: Job, report: Report) -> Action | JobSpec:
        return Action.CONTINUE

    def on_end(self, job: Job, last: Report | None, stopped: bool) -> None:
        pass


# --- Ray Tune: TPE + ASHA -------------------------------------------------------------------
class _StubTrial:
    """What Tune's schedulers read off a Trial."""

    def __init__(self, trial_id: str, config: dict[str, Any]) -> None:
        from types import SimpleNamespace

        self.trial_id, self.config, self.evaluated_params = trial_id, dict(config), {}
        self.experiment_tag, self.status, self.last_result = trial_id, "RUNNING", {}
        manager = SimpleNamespace(
            checkpoint_config=SimpleNamespace(num_to_keep=None), _latest_checkpoint_result=None
        )
        self.run_metadata = SimpleNamespace(checkpoint_manager=manager)

    def is_finished(self) -> bool:
        return self.status in ("TERMINATED", "ERROR")

    def set_config(self, config: dict[str, Any]) -> None:
        self.config = dict(config)

    def set_experiment_tag(self, tag: str) -> None:
        self.experiment_tag = tag

    def __repr__(self) -> str:
        return f"Trial({self.trial_id})"


def _tune_result(report: Report, epochs_done: float) -> dict[str, Any]:
    return {"training_iteration": int(round(epochs_done)), "epoch": epochs_done, "val_loss": report.val_loss}


class TuneTPEASHA:
    """Optuna's TPE with its documented default start-up (``n_startup_trials=10`` random trials before
    the model), under Ray Tune's ``ASHAScheduler`` with its documented defaults (``grace_period=1``,
    ``reduction_factor=4``) and ``max_t`` the space's most epochs."""

    name = "tune-tpe-asha"

    def __init__(
        self, seed: int, max_t: int = EPOCHS[1], grace: int = 1, eta: int = 4, startup: int = 10
    ) -> None:
        import optuna
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        np.random.seed(seed)  # ASHA draws its bracket with numpy
        space = OptunaSearch.convert_search_space(tune_space())
        self.seed = seed
        self.searcher = OptunaSearch(
            space=space,
            metric="val_loss",
            mode="min",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup),
        )
        self.scheduler = ASHAScheduler(
            time_attr="training_iteration",
            metric="val_loss",
            mode="min",
            max_t=max_t,
            grace_period=grace,
            reduction_factor=eta,
        )
        self.trials: dict[str, _StubTrial] = {}
        self.count = 0

    def next_jobs(self, free: int) -> list[JobSpec]:
        out = []
        for _ in range(free):
            tid = f"t{self.count:05d}"
            self.count += 1
            config = self.searcher.suggest(tid)
            trial = self.trials[tid] = _StubTrial(tid, config)
            self.scheduler.on_trial_add(None, trial)
            plan = plan_from_config(config, self.seed)
            out.append(JobSpec(tag=tid, plan=plan, fractions=_epoch_fractions(plan.train.epochs)))
        return out

    def on_report(self, job: Job, report: Report) -> Action | JobSpec:
        trial = self.trials[job.spec.tag]
        if report.diverged:
            return Action.STOP
        result = _tune_result(report, report.epochs)
        trial.last_result = result
        if report.final:
            return Action.CONTINUE
        decision = self.scheduler.on_trial_result(None, trial, result)
        if decision == "STOP":
            return Action.STOP
        self.searcher.on_trial_result(trial.trial_id, result)
        return Action.CONTINUE

    def on_end(self, job: Job, last: Report | None, stopped: bool) -> None:
        trial = self.trials[job.spec.tag]
        if last is None:
            return
        if last.diverged:  # the trial errors, as a NaN loss does under Tune
            trial.status = "ERROR"
            self.scheduler.on_trial_error(None, trial)
            self.searcher.on_trial_complete(trial.trial_id, error=True)
            return
        trial.status = "TERMINATED"
        self.scheduler.on_trial_complete(None, trial, trial.last_result)
        self.searcher.on_trial_complete(trial.trial_id, result=trial.last_result)


# --- Ray Tune: PBT -------------------------------------------------------------------------
class _StubController:
    """The few TuneController methods PopulationBasedTraining calls."""

    search_alg = None

    def __init__(self, owner: TunePBT) -> None:
        self.owner = owner

    def get_trials(self) -> list[_StubTrial]:
        return list(self.owner.members.values())

    def get_live_trials(self) -> list[_StubTrial]:
        return [t for t in self.get_trials() if not t.is_finished()]

    def _schedule_trial_save(self, trial: _StubTrial, result: dict[str, Any] | None = None) -> State:
        return self.owner.checkpoints[trial.trial_id]

    def pause_trial(self, trial: _StubTrial, should_checkpoint: bool = True) -> None:
        trial.status = "PAUSED"


class TunePBT:
    """Ray Tune's ``PopulationBasedTraining`` with its defaults (quantile 0.25, resample probability 0.25,
    perturbation factors 1.2/0.8), a population of 4 (one a slot; Tune's PBT example: 2-4 suffice),
    ``perturbation_interval`` 2 epochs with a checkpoint at each (the docs: not too often, it costs a
    checkpoint). It ranks members by the validation loss of their reports, so it runs no metric
    evaluation and pays none; the member it would return (the best validation loss so far) is scored for
    free (``JobSpec.select_by_val``)."""

    name = "tune-pbt"

    def __init__(self, seed: int, population: int = 4, interval: int = 2) -> None:
        from ray import tune
        from ray.tune.schedulers import PopulationBasedTraining

        random.seed(seed)  # PBT explores with the random module
        np.random.seed(seed)
        self.seed, self.interval, self.population = seed, interval, population
        self.rng = random.Random(seed)
        mutations = {  # all of the space but the mode (a LoRA checkpoint does not continue as full)
            "lr": tune.loguniform(*LR_RANGE),
            "weight_decay": list(WEIGHT_DECAYS),
            "template": list(TEMPLATES),
            **{op: [False, True] for op in OPS},
        }
        self.scheduler = PopulationBasedTraining(
            time_attr="training_iteration",
            metric="val_loss",
            mode="min",
            perturbation_interval=interval,
            hyperparam_mutations=mutations,
            log_config=False,
        )
        self.controller = _StubController(self)
        self.members: dict[str, _StubTrial] = {}
        self.checkpoints: dict[str, State] = {}
        self.epochs_done: dict[str, int] = {}
        self.count = 0
        self.exploits = 0

    def _new_member(self) -> JobSpec:
        tid = f"p{self.count:04d}"
        self.count += 1
        trial = self.members[tid] = _StubTrial(tid, sample_config(self.rng))
        self.scheduler.on_trial_add(self.controller, trial)
        self.epochs_done[tid] = 0
        return self._chunk(trial, parent=None, same_run=False, pays_start=True)

    def _chunk(self, trial: _StubTrial, parent: State | None, same_run: bool, pays_start: bool) -> JobSpec:
        plan = plan_from_config(trial.config, self.seed, epochs=self.interval, warm=parent is not None)
        return JobSpec(
            tag=trial.trial_id,
            plan=plan,
            parent=parent,
            fractions=_epoch_fractions(self.interval),
            evaluate_at=(),
            select_by_val=True,
            same_run=same_run,
            pays_start=pays_start,
        )

    def next_jobs(self, free: int) -> list[JobSpec]:
        live = sum(not t.is_finished() for t in self.members.values())
        return [self._new_member() for _ in range(min(free, self.population - live))]

    def on_report(self, job: Job, report: Report) -> Action | JobSpec:
        trial = self.members[job.spec.tag]
        if report.diverged:
            return Action.STOP
        done = self.epochs_done[trial.trial_id] + int(round(report.epochs))
        self.checkpoints[trial.trial_id] = job.sim.state_at(report.fraction)
        result = _tune_result(report, done)
        trial.last_result = result
        self.scheduler.on_trial_result(self.controller, trial, result)
        if trial.status == "PAUSED":  # exploited: restart from the clone's checkpoint with a new config
            self.exploits += 1
            trial.status = "RUNNING"
            clone = trial.run_metadata.checkpoint_manager._latest_checkpoint_result
            state = clone.checkpoint
            self.epochs_done[trial.trial_id] = int(clone.metrics["training_iteration"])
            return self._chunk(trial, parent=state, same_run=False, pays_start=True)
        if report.final:
            self.epochs_done[trial.trial_id] = done
            return self._chunk(trial, parent=job.sim.end_state, same_run=True, pays_start=False)
        return Action.CONTINUE

    def on_end(self, job: Job, last: Report | None, stopped: bool) -> None:
        if last is not None and last.diverged:  # the member errors; a fresh sample takes its slot
            trial = self.members[job.spec.tag]
            trial.status = "ERROR"
            self.scheduler.on_trial_remove(self.controller, trial)


def random_search(seed: int) -> RandomSearch:
    return RandomSearch(seed)


def tune_tpe_asha(seed: int) -> TuneTPEASHA:
    return TuneTPEASHA(seed)


def tune_pbt(seed: int) -> TunePBT:
    return TunePBT(seed)


STRATEGIES = {
    "trex": trex,
    "greedy": greedy,
    "random": random_search,
    "tune-tpe-asha": tune_tpe_asha,
    "tune-pbt": tune_pbt,
}
