"""FT-Bench metrics: multiple choice, tool calls, TOMG molecule success, oMeS mechanism score, LawBench.

Pure Python (no RDKit, no torch); like ``metrics``, each takes predictions and references (strings)
and returns the mean per-example score in [0, 1], higher is better. Every one must accept any
text without raising, since ``all_scores`` runs every metric on every task.

* ``mc_accuracy`` — option letters (``B``, ``c a d b``, ``B, A, D, C``, or ``stack b``: the
  option's text, then its letter) or true/false: the prediction's first option letters must
  equal the reference's, in order.
* ``tool_call_accuracy`` — the call ``name ( args )`` or JSON ``{"name", "arguments"}``: tool name
  and normalized arguments must both match (GTA's ToolAcc and ArgAcc at once).
* ``tomg_score`` — TOMG-Bench success: the prediction is a valid SMILES (own parser: syntax,
  rings, branches, organic-subset valences) with the reference molecule's heavy-atom counts.
* ``ome_score`` — oMeS partial score: mechanism steps aligned Needleman-Wunsch style; a step of
  the right type earns its weight times the similarity of its intermediate (0 below 0.6).
* ``lawbench_score`` — LawBench's per-task scorers, chosen by the reference's prefix: choice
  (``正确答案:``), charges F1 (``罪名:``), prison-term log distance (``刑期:``), articles F1
  (``法条:``), else ROUGE-L.

Example::

    >>> mc_accuracy(["The answer is B.", "c a b"], ["B", "c a d b"])
    0.5
    >>> tool_call_accuracy(['calculator ( 3 + 4 )'], ['{"name": "calculator", "arguments": "3+4"}'])
    1.0
    >>> tomg_score(["C C ( = O ) O", "C C ( O"], ["O C C = O", "C C O"])
    0.5
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from trex_ray.execute.smiles import parse_smiles

__all__ = ["lawbench_score", "mc_accuracy", "ome_score", "parse_smiles", "tomg_score", "tool_call_accuracy"]


def _check(preds: Sequence[str], refs: Sequence[str]) -> None:
    if len(preds) != len(refs):
        raise ValueError(
            f"metrics: {len(preds)} predictions but {len(refs)} references; pass one prediction per reference"
        )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _squash(text: object) -> str:
    return re.sub(r"\s+", " ", str(text).lower()).strip()


# --- multiple choice --------------------------------------------------------------------------
_LETTER = re.compile(r"(?<![A-Za-z])([A-Ha-h])(?![A-Za-z])")
_BOOL = {
    "true": "true",
    "yes": "true",
    "正确": "true",
    "对": "true",
    "false": "false",
    "no": "false",
    "错误": "false",
    "错": "false",
}
_BOOL_WORD = re.compile(r"true|false|yes|no|正确|错误|对|错")


def _letters(text: str) -> list[str]:
    """Option letters in order; upper-case ones only when there are any (``a`` is also a word)."""
    found = _LETTER.findall(str(text))
    upper = [x for x in found if x.isupper()]
    return [x.lower() for x in (upper or found)]


def _ref_letters(ref: str) -> list[str] | None:
    """The reference's option letters: all of it (``B``, ``c a d b``), or its last word after the
    option's text (``stack b``); None for any other reference."""
    parts = [p for p in re.split(r"[\s,;，、>()（）.]+", str(ref).strip()) if p]
    single = [len(p) == 1 and p.lower() in "abcdefgh" for p in parts]
    if parts and all(single):
        return [p.lower() for p in parts]
    if len(parts) >= 2 and single[-1] and not any(single[:-1]):
        return [parts[-1].lower()]
    return None


def _mc_one(pred: str, ref: str) -> float:
    letters = _ref_letters(ref)
    if letters is not None:
        return float(_letters(pred)[: len(letters)] == letters)
    want = _BOOL.get(_squash(ref).strip(".!。"))
    if want is not None:
        found = _BOOL_WORD.findall(_squash(pred))
        return float(bool(found) and _BOOL[found[0]] == want)
    return float(_squash(pred).split()[:1] == _squash(ref).split()[:1])


def mc_accuracy(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Multiple-choice / ordering / true-false accuracy; see the module docstring."""
    _check(preds, refs)
    return _mean([_mc_one(p, r) for p, r in zip(preds, refs, strict=True)])


# --- tool calls -------------------------------------------------------------------------------
_CALL = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$", re.DOTALL)
Call = tuple[str, str]


def _norm_args(args: object) -> str:
    if isinstance(args, dict):
        return ";".join(f"{_squash(k)}={_norm_args(v)}" for k, v in sorted(args.items()))
    if isinstance(args, (list, tuple)):
        return ",".join(_norm_args(a) for a in args)
    text = _squash(args).replace('"', "").replace("'", "")
    return re.sub(r"\s*([+\-*/=,:])\s*", r"\1", text)


def _json_call(obj: object) -> Call | None:
    if isinstance(obj, dict):
        fn = obj.get("function") if isinstance(obj.get("function"), dict) else obj
        name = fn.get("name") or fn.get("tool") or obj.get("tool")
        args = fn.get("arguments", fn.get("args", fn.get("parameters", "")))
        if isinstance(args, str) and args.strip().startswith("{"):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        return (_squash(name), _norm_args(args)) if name else None
    return None


def parse_call(text: str) -> list[Call] | None:
    """A tool call (or a JSON list of them) as ``[(name, normalized args)]``; None if unreadable."""
    text = str(text).strip()
    start = min([i for i in (text.find("{"), text.find("[")) if i >= 0], default=-1)
    if start >= 0:
        try:
            obj = json.loads(text[start:])
        except ValueError:
            obj = None
        if obj is not None:
            calls = [_json_call(o) for o in (obj if isinstance(obj, list) else [obj])]
            if not calls or any(c is None for c in calls):
                return None
            return [c for c in calls if c is not None]
    m = _CALL.match(text.splitlines()[0] if text else "")
    return [(_squash(m.group(1)), _norm_args(m.group(2)))] if m else None


def _tool_one(pred: str, ref: str) -> float:
    want = parse_call(ref)
    if want is None:
        return float(_squash(pred) == _squash(ref))
    got = parse_call(pred)
    return float(got == want)


def tool_call_accuracy(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Fraction of predictions naming the reference's tool(s) with the same arguments."""
    _check(preds, refs)
    return _mean([_tool_one(p, r) for p, r in zip(preds, refs, strict=True)])


# --- TOMG: SMILES molecules (parsed by smiles.py) --------------------------------------------
def _tomg_one(pred: str, ref: str) -> float:
    target = parse_smiles(ref)
    got = parse_smiles(pred)
    if target is None:  # not a molecule reference: fall back to exact match
        return float(_squash(pred) == _squash(ref))
    return float(got is not None and got.counts() == target.counts())


def tomg_score(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Valid molecules with the reference's heavy-atom composition, as a fraction."""
    _check(preds, refs)
    return _mean([_tomg_one(p, r) for p, r in zip(preds, refs, strict=True)])


# --- oMeS -------------------------------------------------------------------------------------
TAU = 0.6
Step = tuple[str, str, float]  # (type, intermediate, weight)


def _steps(text: str) -> list[Step]:
    """Steps of a mechanism: a JSON list of {type|subtype, intermediate[_smiles], step_weight} or
    ``type intermediate ; type intermediate``. Weights default to 1 / number of steps."""
    text = str(text).strip()
    raw: list[tuple[str, str, float | None]] = []
    if text.startswith(("[", "{")):
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        items = obj.get("mechanism", []) if isinstance(obj, dict) else obj if isinstance(obj, list) else []
        for it in items:
            if isinstance(it, dict):
                kind = it.get("subtype") or it.get("type") or ""
                inter = it.get("intermediate_smiles") or it.get("intermediate") or ""
                weight = it.get("step_weight")
                raw.append((_squash(kind), str(inter).strip(), float(weight) if weight is not None else None))
    else:
        for part in text.split(";"):
            words = part.split()
            if words:
                raw.append((words[0].lower(), " ".join(words[1:]), None))
    return [(k, i, w if w is not None else 1.0 / len(raw)) for k, i, w in raw]


def _bigrams(text: str) -> set[str]:
    s = re.sub(r"\s+", "", text.lower())
    return {s[i : i + 2] for i in range(len(s) - 1)} or {s}


def _similarity(a: str, b: str) -> float:
    """1 for equal intermediates; else character-bigram Jaccard (a stand-in for Morgan Tanimoto)."""
    if re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b):
        return 1.0 if a.strip() else 0.0
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y)


def _ome_one(pred: str, ref: str) -> float:
    gold, guess = _steps(ref), _steps(pred)
    total = sum(w for _, _, w in gold)
    if not gold or total <= 0:
        return float(not guess)
    n, m = len(gold), len(guess)
    dp = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        g_type, g_int, weight = gold[i - 1]
        for j in range(1, m + 1):
            p_type, p_int, _ = guess[j - 1]
            gain = 0.0
            if g_type == p_type:
                sim = _similarity(g_int, p_int)
                gain = weight * (sim if sim >= TAU else 0.0)
            dp[i][j] = max(dp[i - 1][j], dp[i][j - 1], dp[i - 1][j - 1] + gain)
    return dp[n][m] / total


def ome_score(preds: Sequence[str], refs: Sequence[str]) -> float:
    """oMeS S_partial, normalized by the gold steps' total weight."""
    _check(preds, refs)
    return _mean([_ome_one(p, r) for p, r in zip(preds, refs, strict=True)])


# --- LawBench ---------------------------------------------------------------------------------
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SPLIT_LABELS = re.compile(r"[;；,，、]")
MAX_LOG = math.log(216)  # LawBench's log distance for an abstention


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", str(text))


def _set_f1(pred: set[str], ref: set[str]) -> float:
    if not pred and not ref:
        return 1.0
    tp = len(pred & ref)
    return 2 * tp / (len(pred) + len(ref)) if tp else 0.0


def _labels(text: str, prefix: str) -> set[str]:
    body = _compact(text)
    body = body.split(prefix, 1)[1] if prefix in body else body
    return {x for x in _SPLIT_LABELS.split(body) if x}


def _months(text: str) -> int | None:
    t = _compact(text)
    found = re.findall(r"(\d+)个?月", t)
    if found:
        return int(found[0])
    years = re.findall(r"(\d+)年", t)
    return int(years[0]) * 12 if years else None


def _choice(pred: str, answer: str) -> float:
    """LawBench's multi_choice_judge: the answer letter appears and no other option does."""
    present = {x.upper() for x in re.findall(r"(?<![A-Za-z])([A-Da-d])(?![A-Za-z])", pred)}
    return float(answer in present and len(present) == 1)


def _rouge_l(pred: str, ref: str) -> float:
    from trex_ray.execute.metrics import lcs_length

    def units(text: str) -> list[str]:
        return list(_compact(text)) if _CJK.search(text) else _squash(text).split()

    p, r = units(pred), units(ref)
    if not p or not r:
        return float(p == r)
    lcs = lcs_length(p, r)
    return 2 * lcs / (len(p) + len(r)) if lcs else 0.0


def _law_one(pred: str, ref: str) -> float:
    r = _compact(ref)
    if r.startswith("正确答案:") and len(r) > 5:
        return _choice(pred, r[5].upper())
    if r.startswith("罪名:"):
        return _set_f1(_labels(pred, "罪名:"), _labels(ref, "罪名:"))
    if r.startswith("法条:"):
        return _set_f1(set(re.findall(r"\d+", _compact(pred))), set(re.findall(r"\d+", r)))
    if r.startswith("刑期:"):
        want, got = _months(r), _months(pred)
        if want is None:
            return _rouge_l(pred, ref)
        distance = MAX_LOG if got is None else abs(math.log(want + 1) - math.log(got + 1))
        return 1.0 - min(distance, MAX_LOG) / MAX_LOG
    return _rouge_l(pred, ref)


def lawbench_score(preds: Sequence[str], refs: Sequence[str]) -> float:
    """LawBench's hybrid score: each example scored by its own task's scorer, then averaged."""
    _check(preds, refs)
    return _mean([_law_one(p, r) for p, r in zip(preds, refs, strict=True)])
