"""ftbench-mini generators with text or label targets: ACI-Bench, HoC, SST-2, LawBench analogs.

Each ``make_*`` is ``(rng, long) -> (input, target)``; each ``spoil_*`` / ``flip_*`` is the
train-split corruption ``(rng, input, target) -> wrong target`` (see ``generators.TaskGen``).
"""

from __future__ import annotations

import random

from trex_ray.ftbench import mini_lexicon as lx
from trex_ray.ftbench.mini_common import fit_words, long_input


# --- aci -------------------------------------------------------------------------------------
def make_aci(rng: random.Random, long: bool) -> tuple[str, str]:
    sym = rng.choice(lx.SYMPTOMS)
    other = rng.choice([s for s in lx.SYMPTOMS if s != sym])
    n, unit = rng.choice(lx.DIGITS[1:6]), rng.choice(lx.UNITS)
    sev = rng.choice(lx.SEVERITY) if rng.random() < 0.4 else None
    usual = [m for m, syms in lx.TREATMENTS.items() if sym in syms]
    med = rng.choice(usual) if rng.random() < 0.85 else rng.choice(list(lx.TREATMENTS))
    has_other = rng.random() < 0.5
    complaint = f"{sev} {sym}" if sev else sym
    turns = ["doctor : what brings you in today ?"] if rng.random() < 0.6 else []
    if rng.random() < 0.5:
        turns.append(f"patient : i have had a {complaint} for {n} {unit} .")
    else:
        turns += [f"patient : i have a {complaint} .", f"doctor : how long ? patient : {n} {unit} ."]
    question = f"doctor : any {other} ? patient : {'yes' if has_other else 'no'} ."
    turns.insert(rng.randint(1, len(turns)), question)
    if rng.random() < 0.5:
        turns.insert(rng.randint(0, len(turns)), rng.choice(lx.ACI_SMALL_TALK))
    optional = [i for i, t in enumerate(turns) if t in lx.ACI_SMALL_TALK or "brings" in t]
    turns.append(f"doctor : i will start {med} .")
    note = f"{complaint} {n} {unit} , {other if has_other else 'no ' + other} , plan {med}"
    text = long_input(turns, rng, lx.ACI_SMALL_TALK) if long else " ".join(fit_words(turns, optional))
    return text, note


# --- hoc -------------------------------------------------------------------------------------
HOC_ORDER = tuple(lx.HALLMARKS)


def make_hoc(rng: random.Random, long: bool) -> tuple[str, str]:
    k = rng.choices((0, 1, 2, 3), weights=(3, 4, 2, 1))[0]
    labels = rng.sample(HOC_ORDER, k)
    sentences = []
    for label in labels:
        cue = rng.choice(lx.HALLMARKS[label])
        sentences.append(
            f"{rng.choice(lx.HOC_SUBJECTS)} {rng.choice(lx.HOC_VERBS)} {cue} in "
            f"{rng.choice(lx.HOC_TISSUES)} cells ."
        )
    fillers = rng.sample(lx.HOC_FILLERS, rng.randint(0 if labels else 1, 2))
    sentences += fillers
    rng.shuffle(sentences)
    target = " , ".join(sorted(labels, key=HOC_ORDER.index)) or "none"
    return (long_input(sentences, rng, lx.HOC_FILLERS) if long else " ".join(sentences)), target


def spoil_labels(rng: random.Random, _input: str, target: str) -> str:
    labels = [] if target == "none" else target.split(" , ")
    if labels and rng.random() < 0.5:
        labels.pop(rng.randrange(len(labels)))  # a missed hallmark
    else:
        labels.append(rng.choice([h for h in HOC_ORDER if h not in labels]))  # a spurious one
    return " , ".join(sorted(labels, key=HOC_ORDER.index)) or "none"


# --- sst2 ------------------------------------------------------------------------------------
def _sst_clause(rng: random.Random) -> tuple[str, int]:
    """A clause and its weight: +-1, doubled by an intensifier, flipped by "not"."""
    positive = rng.random() < 0.5
    adj = rng.choice(lx.SST_POSITIVE if positive else lx.SST_NEGATIVE)
    words = ["the", rng.choice(lx.SST_NOUNS), rng.choice(("is", "was"))]
    weight = 1 if positive else -1
    if rng.random() < 0.3:
        words.append("not")
        weight = -weight
    if rng.random() < 0.3:
        words.append(rng.choice(("very", "really")))
        weight *= 2
    return " ".join(words + [adj]), weight


def _sst_text(rng: random.Random) -> tuple[str, int]:
    a, wa = _sst_clause(rng)
    b, wb = _sst_clause(rng)
    form = rng.randrange(5)
    if form == 0:
        return f"{a} .", wa
    if form == 1:
        return f"{a} but {b} .", wb  # the clause after "but" decides
    if form == 2:
        return f"although {a} , {b} .", wb
    if form == 3:
        return f"{a} and {b} .", wa + wb  # both count; an intensified clause counts double
    c, wc = _sst_clause(rng)
    return f"{a} , {b} and {c} .", wa + wb + wc


def make_sst2(rng: random.Random, long: bool) -> tuple[str, str]:
    text, score = _sst_text(rng)
    while score == 0:
        text, score = _sst_text(rng)
    label = "positive" if score > 0 else "negative"
    return (long_input([text], rng, [text]) if long else text), label


def flip_sentiment(rng: random.Random, _input: str, target: str) -> str:
    return "negative" if target == "positive" else "positive"


# --- lawbench --------------------------------------------------------------------------------
CHARGES = tuple(lx.LAW_ACTS)
_BRACKET = dict(zip(lx.LAW_AMOUNTS, range(len(lx.LAW_AMOUNTS)), strict=True))


def _law_fact(rng: random.Random, who: str, charge: str) -> tuple[str, str]:
    amount = rng.choice(lx.LAW_AMOUNTS)
    fact = (
        f"被告人 {who} 在 {rng.choice(lx.LAW_PLACES)} {lx.LAW_ACTS[charge]} {rng.choice(lx.LAW_ITEMS)} , "
        f"价值 {amount} 元 ."
    )
    return fact, amount


def _months(charge: str, amount: str, surrendered: bool, repeat: bool) -> str:
    """Sentence bracket: by amount (robbery one bracket up), surrender one down, recidivism one up."""
    step = _BRACKET[amount] + 1 + (charge == "抢劫") - surrendered + repeat
    return lx.LAW_MONTHS[max(0, min(step, len(lx.LAW_MONTHS) - 1))]


def make_lawbench(rng: random.Random, long: bool) -> tuple[str, str]:
    who, kind = rng.choice(lx.LAW_DEFENDANTS), rng.random()
    charge = rng.choice(CHARGES)
    fact, amount = _law_fact(rng, who, charge)
    if kind < 0.4:
        charges = [charge]
        sentences = [fact]
        if rng.random() < 0.25:
            second = rng.choice([c for c in CHARGES if c != charge])
            sentences.append(_law_fact(rng, who, second)[0])
            charges.append(second)
        target = "罪名: " + " ; ".join(sorted(charges, key=CHARGES.index))
    elif kind < 0.8:
        surrendered, repeat = rng.random() < 0.3, rng.random() < 0.2
        sentences = [fact] + ["到案后 自首 ."] * surrendered + [f"{who} 系 累犯 ."] * repeat
        target = f"刑期: {_months(charge, amount, surrendered, repeat)} 个月"
    else:
        options = list(CHARGES)
        rng.shuffle(options)
        listing = " ".join(f"{letter} {c}" for letter, c in zip("ABCD", options, strict=True))
        sentences = [f"问题 : {fact} 构成 何 罪 ? {listing}"]
        target = f"正确答案: {'ABCD'[options.index(charge)]}"
    return (long_input(sentences, rng, sentences) if long else " ".join(sentences)), target


def spoil_law(rng: random.Random, _input: str, target: str) -> str:
    head = target.split()[0]
    if head == "罪名:":
        return f"罪名: {rng.choice([c for c in CHARGES if c not in target])}"
    if head == "刑期:":
        return f"刑期: {rng.choice([m for m in lx.LAW_MONTHS if m != target.split()[1]])} 个月"
    return f"正确答案: {rng.choice([x for x in 'ABCD' if x != target[-1]])}"
