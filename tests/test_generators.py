"""Built-in generated tasks: determinism, sizes, dirt in train only, closed vocabulary."""

from __future__ import annotations

import pytest

from trex_ray.ftbench import builtin_task, builtin_vocabulary, generate, list_builtin_tasks
from trex_ray.ftbench import lexicon as lx
from trex_ray.spec import TEMPLATES, MetricName

TASKS = ["sentiment", "reverse", "headline"]


def sentiment_rule(text: str) -> str:
    """An independent reading of the sentiment rule: sum of polarities, "not" flips the next word."""
    polarity = {**{w: 1 for w in lx.POSITIVE}, **{w: -1 for w in lx.NEGATIVE}}
    score, sign = 0, 1
    for word in text.split():
        if word == "not":
            sign = -1
            continue
        score += sign * polarity.get(word, 0)
        sign = 1
    return "positive" if score > 0 else "negative" if score < 0 else "neutral"


@pytest.mark.parametrize("name", TASKS)
def test_deterministic_per_name_split_seed(name: str) -> None:
    assert generate(name, "train", n=50, seed=3) == generate(name, "train", n=50, seed=3)
    assert generate(name, "train", n=50, seed=3) != generate(name, "train", n=50, seed=4)
    assert generate(name, "eval", n=50) != generate(name, "train", n=50)


@pytest.mark.parametrize("name", TASKS)
def test_default_sizes_and_n(name: str) -> None:
    assert len(generate(name, "train")) == 2000
    assert len(generate(name, "eval")) == 300
    assert len(generate(name, "train", n=7)) == 7
    assert generate(name, "train", n=0) == []


@pytest.mark.parametrize("name", TASKS)
def test_zero_unknown_words(name: str) -> None:
    vocab = set(builtin_vocabulary())
    for split in ("train", "eval"):
        for rec in generate(name, split):
            for template in TEMPLATES.values():
                text = template.format(input=rec["input"], task=name) + " " + rec["target"]
                unknown = [w for w in text.split() if w not in vocab]
                assert not unknown, (template, rec, unknown)


def test_vocabulary_is_sorted_small_and_has_template_words() -> None:
    vocab = builtin_vocabulary()
    assert vocab == sorted(set(vocab))
    assert 100 < len(vocab) < 500
    assert {"task:", "input:", "answer:", "question:", "=>", "0", "9", ".", ","} <= set(vocab)


@pytest.mark.parametrize("name", TASKS)
def test_train_is_dirty_eval_is_clean(name: str) -> None:
    train = generate(name, "train", with_meta=True)
    rate = {"sentiment": 0.20, "reverse": 0.10, "headline": 0.10}[name]
    assert abs(sum(r["noisy"] for r in train) / len(train) - rate) < 0.04
    assert sum(r["duplicate"] for r in train) == 60
    assert 20 < sum(r["long"] for r in train) < 100
    assert len({r["input"] for r in train}) < len(train)
    for rec in train:
        if not rec["long"]:
            assert len(rec["input"].split()) <= 40 and len(rec["target"].split()) <= 8
        else:
            assert len(rec["input"].split()) + len(rec["target"].split()) > 48
    ev = generate(name, "eval", with_meta=True)
    assert not any(r["noisy"] or r["long"] or r["duplicate"] for r in ev)
    assert "noisy" not in generate(name, "train", n=3)[0]


def test_sentiment_labels_follow_the_rule_and_are_balanced() -> None:
    ev = generate("sentiment", "eval")
    assert all(r["target"] == sentiment_rule(r["input"]) == r["label"] for r in ev)
    counts = {lab: sum(r["target"] == lab for r in ev) for lab in lx.LABELS}
    assert min(counts.values()) > 0.2 * len(ev)
    train = generate("sentiment", "train", with_meta=True)
    assert all((r["target"] != sentiment_rule(r["input"])) == r["noisy"] for r in train)


def test_reverse_and_headline_targets() -> None:
    for rec in generate("reverse", "eval"):
        assert rec["target"].split() == rec["input"].split()[::-1]
        assert 3 <= len(rec["input"].split()) <= 6
    for rec in generate("headline", "eval"):
        agent, verb, obj, _in, place = rec["target"].split()
        past = dict((present, past) for past, present in lx.VERBS)[verb]
        assert f"the {agent} {past} the {obj} in {place} ." in rec["input"]


def test_unknown_task_or_split() -> None:
    with pytest.raises(ValueError, match="unknown"):
        generate("poetry", "train")
    with pytest.raises(ValueError, match="split"):
        generate("reverse", "dev")


def test_registry() -> None:
    names = [name for name, _ in list_builtin_tasks()]
    assert names == ["sotu_party", "tweet_sentiment", *sorted(TASKS)]  # real data first
    for name in names[:2]:
        task = builtin_task(name)
        assert task.model.id == "builtin:smollm2-135m" and task.data.eval.split == "test"
        assert task.data.eval.limit >= 300 and task.data.val_size and task.metric.name is MetricName.accuracy
    metrics = {
        "sentiment": MetricName.accuracy, "reverse": MetricName.exact_match, "headline": MetricName.rougeL,
    }
    for name in names[2:]:
        task = builtin_task(name)
        assert task.name == name and task.metric.name is metrics[name]
        assert task.model.id == "builtin:tiny-llama"
        assert task.data.train[0].id == f"builtin:{name}" and task.data.eval.split == "eval"
        assert task.budget.max_nodes == 12
    assert builtin_task("sentiment").max_new_tokens == 2
    with pytest.raises(ValueError, match="unknown"):
        builtin_task("poetry")
