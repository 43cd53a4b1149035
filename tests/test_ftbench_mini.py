"""The ftbench-mini analogs: deterministic, closed vocabulary, short, dirty train / clean eval, scorable."""

from __future__ import annotations

import pytest

from trex_ray.execute.bench_metrics import parse_call, parse_smiles
from trex_ray.execute.metrics import score
from trex_ray.ftbench import builtin_vocabulary, generate
from trex_ray.ftbench.generators import TASKS, task_names
from trex_ray.ftbench.mini import ANALOGS
from trex_ray.ftbench.mini_lexicon import mini_vocabulary
from trex_ray.ftbench.suites import mini_task, suite_tasks
from trex_ray.spec import TEMPLATES

ANALOG_NAMES = suite_tasks("ftbench-mini")
SOURCES = [f"ftbench-mini/{n}" for n in ANALOG_NAMES]


def test_analogs_are_registered_generators() -> None:
    assert set(SOURCES) == set(ANALOGS) and set(SOURCES) <= set(task_names())
    assert all(TASKS[s].description for s in SOURCES)


@pytest.mark.parametrize("source", SOURCES)
def test_deterministic_per_split_and_seed(source: str) -> None:
    assert generate(source, "train", n=40, seed=2) == generate(source, "train", n=40, seed=2)
    assert generate(source, "train", n=40, seed=2) != generate(source, "train", n=40, seed=3)
    assert generate(source, "eval", n=40) != generate(source, "train", n=40)
    assert len(generate(source, "train")) == 2000 and len(generate(source, "eval")) == 300


@pytest.mark.parametrize("name", ANALOG_NAMES)
def test_every_prompt_and_target_is_in_the_vocabulary(name: str) -> None:
    vocab = set(builtin_vocabulary())
    task = mini_task(name)
    for split in ("train", "eval"):
        for rec in generate(f"ftbench-mini/{name}", split):
            for template in TEMPLATES.values():
                text = template.format(input=rec["input"], task=task.name) + " " + rec["target"]
                unknown = [w for w in text.split() if w not in vocab]
                assert not unknown, (template, rec, unknown)


def test_vocabulary_stays_small() -> None:
    assert set(mini_vocabulary()) <= set(builtin_vocabulary())
    assert len(builtin_vocabulary()) < 500  # the tiny model's embedding table


@pytest.mark.parametrize("source", SOURCES)
def test_lengths_dirt_in_train_only(source: str) -> None:
    train = generate(source, "train", with_meta=True)
    rate = ANALOGS[source][2]
    assert abs(sum(r["noisy"] for r in train) / len(train) - rate) < 0.04
    assert sum(r["duplicate"] for r in train) == 60
    assert 20 < sum(r["long"] for r in train) < 100
    for rec in train:
        if rec["long"]:
            assert len(rec["input"].split()) > 48
        else:
            assert len(rec["input"].split()) <= 40, rec
        assert 1 <= len(rec["target"].split()) <= 10, rec
    ev = generate(source, "eval", with_meta=True)
    assert not any(r["noisy"] or r["long"] or r["duplicate"] for r in ev)
    assert all(len(r["input"].split()) <= 40 and len(r["target"].split()) <= 10 for r in ev)


@pytest.mark.parametrize("name", ANALOG_NAMES)
def test_references_score_perfectly_and_noise_scores_lower(name: str) -> None:
    metric = mini_task(name).metric.name.value
    ev = generate(f"ftbench-mini/{name}", "eval")
    refs = [r["target"] for r in ev]
    assert score(metric, refs, refs) == pytest.approx(1.0)
    noisy = [r for r in generate(f"ftbench-mini/{name}", "train", with_meta=True) if r["noisy"]]
    clean = generate(f"ftbench-mini/{name}", "train", seed=0, with_meta=True)
    truth = {r["input"]: r["target"] for r in clean if not r["noisy"]}
    pairs = [(r["target"], truth[r["input"]]) for r in noisy if r["input"] in truth]
    if pairs:  # a corrupted target scores below the clean one for the same input
        assert score(metric, [p for p, _ in pairs], [t for _, t in pairs]) < 0.9


def test_eval_labels_are_balanced_enough() -> None:
    for name, floor in (("sst2", 0.3), ("csbench", 0.1), ("openfindata", 0.2)):
        targets = [r["target"] for r in generate(f"ftbench-mini/{name}", "eval")]
        counts = {t: targets.count(t) for t in set(targets)}
        assert min(counts.values()) > floor * len(targets) / len(counts), (name, counts)


def test_analog_shapes() -> None:
    tomg = generate("ftbench-mini/tomg", "eval")
    assert all(parse_smiles(r["target"]) is not None for r in tomg)
    gta = generate("ftbench-mini/gta", "eval")
    assert all(parse_call(r["target"]) for r in gta)
    econ = generate("ftbench-mini/econlogicqa", "eval")
    assert all(sorted(r["target"].split()) == ["a", "b", "c", "d"] for r in econ)
    law = generate("ftbench-mini/lawbench", "eval")
    assert {r["target"].split()[0] for r in law} == {"罪名:", "刑期:", "正确答案:"}
    hoc = generate("ftbench-mini/hoc", "eval")
    assert any("," in r["target"] for r in hoc) and any(r["target"] == "none" for r in hoc)
