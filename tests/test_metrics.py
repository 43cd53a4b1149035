"""Metrics against examples computed by hand."""

from __future__ import annotations

import pytest

from trex_ray.execute.metrics import (
    accuracy,
    all_scores,
    exact_match,
    lcs_length,
    macro_f1,
    normalize,
    rouge1,
    rougeL,
    score,
)
from trex_ray.spec import MetricName


def test_normalize() -> None:
    assert normalize("  Hello,   World!! ") == "hello, world"
    assert normalize("POSITIVE.\n") == "positive"
    assert normalize("...") == ""


def test_accuracy_reads_first_word() -> None:
    preds = ["Positive. really good", "neutral", "negative junk junk", "junk negative"]
    refs = ["positive", "negative", "negative", "negative"]
    assert accuracy(preds, refs) == pytest.approx(0.5)


def test_accuracy_multiword_label() -> None:
    assert accuracy(["not sure at all"], ["not sure"]) == 1.0
    assert accuracy(["not"], ["not sure"]) == 0.0


def test_exact_match() -> None:
    assert exact_match(["The cat.", "a dog", " a  b "], ["the cat", "a cat", "a b"]) == pytest.approx(2 / 3)


def test_macro_f1_single_label() -> None:
    # a: tp1 fp0 fn1 -> 2/3; b: tp1 fp1 fn0 -> 2/3; c: tp0 -> 0; "x" is outside the label set.
    preds, refs = ["a", "b", "b", "x"], ["a", "a", "b", "c"]
    assert macro_f1(preds, refs) == pytest.approx(4 / 9)


def test_macro_f1_perfect_and_out_of_set() -> None:
    assert macro_f1(["yes", "no"], ["yes", "no"]) == 1.0
    assert macro_f1(["maybe", "maybe"], ["yes", "no"]) == 0.0


def test_macro_f1_multi_label() -> None:
    # sports: 1; politics: tp1 fn1 -> 2/3; tech: tp1 fp1 -> 2/3.
    preds = ["sports", "politics, tech", "tech"]
    refs = ["sports, politics", "politics", "tech"]
    assert macro_f1(preds, refs) == pytest.approx(7 / 9)


def test_rouge1() -> None:
    # overlap: the x2, cat, on, mat = 5 of 6 and 6 -> F = 5/6.
    assert rouge1(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(5 / 6)
    assert rouge1(["a b c d"], ["b a d c"]) == pytest.approx(1.0)


def test_rougeL() -> None:
    # LCS 3: P = 1, R = 3/4 -> F = 6/7.
    assert rougeL(["the cat sat"], ["the cat sat down"]) == pytest.approx(6 / 7)
    # LCS of "a b c d" and "b a d c" is 2 -> P = R = 1/2.
    assert rougeL(["a b c d"], ["b a d c"]) == pytest.approx(0.5)
    # averaged over examples: (1 + 0) / 2
    assert rougeL(["Mayor opens bridge.", "xyz"], ["mayor opens bridge", "abc"]) == pytest.approx(0.5)


def test_lcs_and_empty_texts() -> None:
    assert lcs_length(list("abcbdab"), list("bdcaba")) == 4
    assert rougeL([""], [""]) == 1.0
    assert rouge1([""], ["word"]) == 0.0
    assert accuracy([], []) == 0.0


def test_score_dispatch_and_errors() -> None:
    preds, refs = ["the cat sat"], ["the cat sat down"]
    assert score("rougeL", preds, refs) == rougeL(preds, refs)
    assert score(MetricName.exact_match, preds, refs) == 0.0
    assert set(all_scores(preds, refs)) == {m.value for m in MetricName}
    with pytest.raises(ValueError, match="unknown"):
        score("bleu", preds, refs)
    with pytest.raises(ValueError, match="one prediction per reference"):
        accuracy(["a"], ["a", "b"])
