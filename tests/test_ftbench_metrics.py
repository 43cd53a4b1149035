"""FT-Bench metrics against hand-computed examples; no Ray, no torch."""

from __future__ import annotations

import math

import pytest

from trex_ray.execute.bench_metrics import (
    lawbench_score,
    mc_accuracy,
    ome_score,
    parse_smiles,
    tomg_score,
    tool_call_accuracy,
)
from trex_ray.execute.metrics import METRICS, all_scores, macro_f1, rouge1, score
from trex_ray.spec import MetricName

NEW = ["mc_accuracy", "tool_call_accuracy", "tomg_score", "ome_score", "lawbench_score"]


def test_every_metric_name_is_registered() -> None:
    assert {m.value for m in MetricName} == set(METRICS)
    for name in NEW:
        assert score(name, ["x"], ["x"]) in (0.0, 1.0)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_takes_any_text(name: str) -> None:
    junk = ["", "{", "[1, 2", "C C ( (", "刑期:", "=> => =>", '{"name": 3}', "a b c d e f g h"]
    value = score(name, junk, list(reversed(junk)))
    assert 0.0 <= value <= 1.0
    with pytest.raises(ValueError, match="predictions"):
        score(name, ["a"], [])


# --- multiple choice --------------------------------------------------------------------------
def test_mc_single_letter() -> None:
    assert mc_accuracy(["The answer is B.", "b", "c", "a"], ["B", "b", "b", "A"]) == 0.75
    # upper-case letters win over the article "a"
    assert mc_accuracy(["a guess: C"], ["c"]) == 1.0
    # the option's text, then its letter: the letter decides
    assert mc_accuracy(["stack b", "queue b", "stack c", "b"], ["stack b"] * 4) == 0.75


def test_mc_ordering_and_true_false() -> None:
    assert mc_accuracy(
        ["c a d b", "c a b", "B, A, D, C"], ["c a d b", "c a d b", "b a d c"]
    ) == pytest.approx(2 / 3)
    assert mc_accuracy(["True.", "false", "正确", "no"], ["true", "true", "true", "false"]) == 0.75


# --- tool calls -------------------------------------------------------------------------------
def test_tool_call_forms() -> None:
    ref = '{"name": "calculator", "arguments": "3+4"}'
    preds = ["calculator ( 3 + 4 )", "calculator ( 3 + 5 )", "search ( 3 + 4 )", "the answer is 7"]
    assert tool_call_accuracy(preds, [ref] * 4) == 0.25


def test_tool_call_dict_arguments_and_lists() -> None:
    ref = '{"name": "calculator", "arguments": {"expression": "3 + 4"}}'
    pred = '{"function": {"name": "Calculator", "arguments": "{\\"expression\\": \\"3+4\\"}"}}'
    assert tool_call_accuracy([pred], [ref]) == 1.0
    chain = '[{"name": "ocr", "arguments": "image"}, {"name": "calculator", "arguments": "2*3"}]'
    assert tool_call_accuracy([chain, '[{"name": "ocr", "arguments": "image"}]'], [chain, chain]) == 0.5
    assert tool_call_accuracy(["translate ( coffee , french )"], ["translate ( coffee,french )"]) == 1.0


# --- TOMG -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "smiles,valid",
    [
        ("C C ( = O ) O", True),
        ("c1ccccc1", True),
        ("[NH4+]", True),
        ("C1CC1", True),
        ("N#N", True),
        ("ClCCBr", True),
        ("C C ( O", False),
        ("C1CC", False),
        ("C(=O)(=O)=O", False),
        ("FFF", False),
        ("C==C", False),
        ("(C)C", False),
        ("", False),
        ("C X", False),
        ("C()C", False),
    ],
)
def test_smiles_validity(smiles: str, valid: bool) -> None:
    assert (parse_smiles(smiles) is not None) is valid


def test_tomg_success_is_valid_with_the_right_composition() -> None:
    # acetic acid written two ways: C2 O2 both; an invalid one; right validity but one O too many
    preds = ["C C ( = O ) O", "O C C = O", "C C ( O", "O C C ( = O ) O"]
    assert tomg_score(preds, ["C C ( = O ) O"] * 4) == 0.5
    counts = parse_smiles("N C C ( = O ) O").counts()
    assert counts == {"C": 2, "N": 1, "O": 2}


# --- oMeS -------------------------------------------------------------------------------------
GOLD = "protonation oxonium ; attack tetrahedral ; elimination acid"


def test_ome_alignment_by_hand() -> None:
    assert ome_score([GOLD], [GOLD]) == 1.0
    # step 2 missing: steps 1 and 3 align, 2 of 3 equal weights
    assert ome_score(["protonation oxonium ; elimination acid"], [GOLD]) == pytest.approx(2 / 3)
    # order swapped: only one step can align
    assert ome_score(["attack tetrahedral ; protonation oxonium"], [GOLD]) == pytest.approx(1 / 3)
    # a right type with a wrong intermediate earns nothing; a near one (Jaccard 0.9 >= 0.6) earns 0.9
    assert ome_score(["protonation oxonium ; attack alkoxide"], [GOLD]) == pytest.approx(1 / 3)
    assert ome_score(["protonation oxonium ; attack tetrahedrall"], [GOLD]) == pytest.approx((1 + 0.9) / 3)
    assert ome_score(["", "nonsense"], [GOLD, GOLD]) == 0.0


def test_ome_json_with_step_weights() -> None:
    gold = (
        '[{"type": "a", "intermediate": "CCO", "step_weight": 0.25},'
        ' {"type": "b", "intermediate": "CC=O", "step_weight": 0.75}]'
    )
    pred = '[{"subtype": "b", "intermediate_smiles": "CC=O"}]'
    assert ome_score([pred], [gold]) == pytest.approx(0.75)


# --- LawBench ---------------------------------------------------------------------------------
def test_lawbench_prison_term_log_distance() -> None:
    ref = "刑期: 12 个月"
    expected = 1 - abs(math.log(13) - math.log(7)) / math.log(216)  # 0.8848
    assert lawbench_score(["刑期: 6 个月"], [ref]) == pytest.approx(expected)
    assert lawbench_score(["判处有期徒刑 1 年"], [ref]) == 1.0  # years count as 12 months
    assert lawbench_score(["无法判断"], [ref]) == 0.0  # abstention: the largest distance


def test_lawbench_charges_choice_articles_and_rouge() -> None:
    assert lawbench_score(["罪名: 盗窃"], ["罪名: 盗窃 ; 诈骗"]) == pytest.approx(2 / 3)
    assert lawbench_score(["B", "A 或 B", "正确答案: C"], ["正确答案: B"] * 3) == pytest.approx(1 / 3)
    assert lawbench_score(["依据第264条"], ["法条: 第 264 条"]) == 1.0
    assert lawbench_score(["盗窃"], ["盗窃罪"]) == pytest.approx(0.8)  # character ROUGE-L: 2*2/(2+3)


def test_mixed_lawbench_batch_is_the_mean() -> None:
    preds = ["罪名: 抢劫", "刑期: 12 个月", "正确答案: A"]
    refs = ["罪名: 抢劫", "刑期: 12 个月", "正确答案: B"]
    assert lawbench_score(preds, refs) == pytest.approx(2 / 3)


# --- existing metrics on the analog formats -----------------------------------------------------
def test_multilabel_macro_f1_on_hoc_format() -> None:
    # labels: death (tp 1, fn 1 -> 2/3), genome (tp 1 -> 1), none (tp 1 -> 1), growth (fp 1 -> 0 ...)
    preds = ["death , genome", "none", "growth"]
    refs = ["death , genome", "none", "death"]
    # per label over the references' labels {death, genome, none}:
    # death: tp1 fn1 -> 2/3; genome: 1; none: 1 -> mean 8/9
    assert macro_f1(preds, refs) == pytest.approx(8 / 9)


def test_rouge1_on_aci_note() -> None:
    # 5 of 6 words overlap in both: P = R = 5/6
    assert rouge1(
        ["cough 3 days , fever , plan rest"], ["cough 3 days , fever , plan fluids"]
    ) == pytest.approx(5 / 6)


def test_all_scores_has_the_new_metrics() -> None:
    assert set(NEW) <= set(all_scores(["a"], ["a"]))
