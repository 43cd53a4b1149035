"""The ``ftbench-mini`` analogs: one small generated task per FT-Bench task, same output shape.

Each analog keeps its FT-Bench task's output format and metric, with a learnable hidden rule,
inputs of at most 40 words, targets of at most 10, and train-only dirt (see
``generators._dirty``: corrupted targets at the rate below, ~3 % duplicates, ~3 % over-long
inputs). Words come from ``mini_lexicon``.

=========================  ================================================  ==================  =====
analog                     input -> target                                   metric              dirt
=========================  ================================================  ==================  =====
ftbench-mini/aci           dialogue -> "mild cough 3 days , no fever ,        rouge1              10 %
                           plan antibiotics"
ftbench-mini/tomg          "add hydroxyl to N C C ." -> "N C C O"            tomg_score          10 %
ftbench-mini/omebench      reactants + conditions -> "protonation oxonium    ome_score           15 %
                           ; attack tetrahedral ; ..."
ftbench-mini/hoc           abstract sentences -> "death , genome" | none      macro_f1            15 %
ftbench-mini/sst2          review -> positive | negative                     accuracy            15 %
ftbench-mini/csbench       question, "heap a , queue b , ..." -> "queue b"   mc_accuracy         10 %
ftbench-mini/openfindata   question, "rise a , fall b , ..." -> "fall b"     mc_accuracy         10 %
ftbench-mini/econlogicqa   four shuffled events -> "c a d b"                 mc_accuracy         10 %
ftbench-mini/gta           request -> "weather ( paris )"                    tool_call_accuracy  15 %
ftbench-mini/lawbench      Chinese case -> "罪名: 盗窃" | "刑期: 12 个月" |     lawbench_score      10 %
                           "正确答案: B"
=========================  ================================================  ==================  =====

Example::

    >>> import random
    >>> text, target = ANALOGS["ftbench-mini/gta"][0](random.Random(0), False)
    >>> target.split()[1]
    '('
"""

from __future__ import annotations

import random
from collections.abc import Callable

from trex_ray.ftbench import lexicon as base_lx
from trex_ray.ftbench import mini_lexicon as lx

Make = Callable[[random.Random, bool], tuple[str, str]]
Corrupt = Callable[[random.Random, str, str], str]
LONG_WORDS = 50
MAX_INPUT_WORDS = 40


def _long(sentences: list[str], rng: random.Random, fillers: tuple[str, ...] | list[str]) -> str:
    """Pad to an over-long input (> LONG_WORDS words) with filler sentences."""
    text = " ".join(sentences)
    while len(text.split()) <= LONG_WORDS:
        text += " " + rng.choice(list(fillers) or sentences)
    return text


def _fit(sentences: list[str], optional: list[int]) -> list[str]:
    """Drop optional sentences (by index, last first) until the input has at most 40 words."""
    keep = list(range(len(sentences)))
    for i in sorted(optional, reverse=True):
        if sum(len(sentences[j].split()) for j in keep) <= MAX_INPUT_WORDS:
            break
        keep.remove(i)
    return [sentences[j] for j in keep]


def _retry(make: Make) -> Corrupt:
    """A corruption that swaps in the target of an unrelated example."""

    def corrupt(rng: random.Random, _input: str, target: str) -> str:
        for _ in range(100):
            wrong = make(rng, False)[1]
            if wrong != target:
                return wrong
        return target

    return corrupt


def _other_choice(rng: random.Random, options: list[str], target: str) -> str:
    return rng.choice([o for o in options if o != target])


# --- aci -------------------------------------------------------------------------------------
def _aci(rng: random.Random, long: bool) -> tuple[str, str]:
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
    text = _long(turns, rng, lx.ACI_SMALL_TALK) if long else " ".join(_fit(turns, optional))
    return text, note


# --- tomg ------------------------------------------------------------------------------------
_GROUP_ATOMS = {
    "hydroxyl": ["O"],
    "amino": ["N"],
    "methyl": ["C"],
    "carboxyl": ["C", "(", "=", "O", ")", "O"],
}


def _arrange(rng: random.Random, atoms: list[str]) -> list[str]:
    """A valid single-bonded SMILES over ``atoms`` in random order, perhaps with one branch.

    Open generation: many strings fit one composition, and the training targets use any of them."""
    atoms = atoms[:]
    rng.shuffle(atoms)
    if "O" in atoms[1:-1] or atoms.count("O") == len(atoms):
        atoms.sort(key=lambda a: a == "O")  # keep oxygens (valence 2) off branch points: move them last
    spots = [i for i in range(1, len(atoms) - 1) if atoms[i - 1] in "CN"]
    if len(atoms) >= 4 and spots and rng.random() < 0.5:
        i = rng.choice(spots)
        return atoms[:i] + ["(", atoms[i], ")"] + atoms[i + 1 :]
    return atoms


def _composition(c: int, n: int, o: int) -> list[str]:
    return ["C"] * c + ["N"] * n + ["O"] * o


def _tomg_edit(rng: random.Random) -> tuple[str, list[str]]:
    base = _arrange(rng, _composition(rng.randint(1, 3), rng.randint(0, 1), rng.randint(0, 1)))
    ops = ["add"] * 3 + (["remove", "replace"] if "O" in base and len(base) > 1 else [])
    op = rng.choice(ops)
    smiles = " ".join(base)
    if op == "add":
        group = rng.choice([g for g, atoms in _GROUP_ATOMS.items() if len(base) + len(atoms) <= 10])
        return f"add {group} to {smiles} .", base + _GROUP_ATOMS[group]
    i = base.index("O")
    if op == "remove":
        branch = 0 < i < len(base) - 1 and base[i - 1] == "(" and base[i + 1] == ")"
        return f"remove a hydroxyl from {smiles} .", base[: i - 1] + base[i + 2 :] if branch else base[
            :i
        ] + base[i + 1 :]
    return f"replace a hydroxyl in {smiles} with amino .", base[:i] + ["N"] + base[i + 1 :]


def _tomg(rng: random.Random, long: bool) -> tuple[str, str]:
    if rng.random() < 0.5:
        c, n, o = rng.randint(1, 4), rng.randint(0, 2), rng.randint(0, 2)
        parts = [f"{c} carbon"] + [f"{n} nitrogen"] * bool(n) + [f"{o} oxygen"] * bool(o)
        rng.shuffle(parts)
        listed = parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
        text, target = f"generate a molecule with {listed} atoms .", _arrange(rng, _composition(c, n, o))
    else:
        text, target = _tomg_edit(rng)
    return (_long([text], rng, [text]) if long else text), " ".join(target)


def _spoil_smiles(rng: random.Random, _input: str, target: str) -> str:
    """Scraped-data dirt: an invalid string (broken branch) or a molecule an atom short or long."""
    toks = target.split()
    roll = rng.random()
    if roll < 0.4:
        if ")" in toks:
            toks.remove(")")
        else:
            toks.insert(rng.randint(1, len(toks)), "(")
    elif roll < 0.7 and len([t for t in toks if t in "CNO"]) > 1:
        atoms = [
            i for i, t in enumerate(toks) if t in "CNO" and i + 1 < len(toks) and toks[i + 1] not in ")="
        ]
        toks.pop(rng.choice(atoms) if atoms else len(toks) - 1)
    else:
        toks.append(rng.choice(["C", "N", "O"]))
    return " ".join(toks)


# --- omebench ------------------------------------------------------------------------------
CARBONYLS = ("ester", "aldehyde", "ketone")
SUBSTRATES = (*CARBONYLS, "alkene", "halide")
PARTNERS = ("water", "amine", "alcohol", "")
Step = tuple[str, str]


def _prefix(sub: str, partner: str, cond: str) -> list[Step]:
    """Activation: acid protonates the substrate; base deprotonates a nucleophile or an alpha carbon."""
    if cond == "acid":
        return (
            [("protonation", "oxonium")]
            if sub in CARBONYLS
            else [("protonation", "carbocation")]
            if sub == "alkene"
            else []
        )
    if cond == "base" and partner in ("water", "alcohol"):
        return [("deprotonation", "alkoxide")]
    if cond == "base" and not partner and sub in ("aldehyde", "ketone"):
        return [("deprotonation", "enolate")]
    return []


def _core(sub: str, partner: str, cond: str) -> list[Step]:
    """The bond-forming (or -breaking) step."""
    if not partner:
        if sub == "aldehyde" and cond == "base":
            return [("attack", "aldol")]
        if sub in ("aldehyde", "ketone") and cond == "acid":
            return [("deprotonation", "enol")]
        return [("elimination", "alkene")] if sub == "halide" and cond != "acid" else []
    if sub == "ester":
        return [("attack", "tetrahedral")]
    if sub in ("aldehyde", "ketone"):
        return [("attack", "hemiaminal" if partner == "amine" else "tetrahedral")]
    return [("attack", "ammonium" if partner == "amine" else "oxonium")]


def _suffix(sub: str, partner: str, cond: str) -> list[Step]:
    """How the product forms: the leaving group, or the final proton transfer."""
    if not partner:
        return []
    if sub == "ester":
        if partner == "water":
            return [("elimination", {"acid": "acid", "base": "carboxylate"}.get(cond, "alcohol"))]
        return [("elimination", "alkoxide" if partner == "amine" else "alcohol")]
    if sub in ("aldehyde", "ketone"):
        if partner == "amine":
            return [("elimination", "imine")] if cond == "acid" else []
        return [("protonation" if cond == "base" else "deprotonation", "alcohol")] if cond != "heat" else []
    return [("deprotonation", "amine" if partner == "amine" else "alcohol")]


def _ome(rng: random.Random, long: bool) -> tuple[str, str]:
    """A mechanism built from three parts, each driven by different features of the reaction."""
    steps: list[Step] = []
    while not steps:
        sub, partner, cond = rng.choice(SUBSTRATES), rng.choice(PARTNERS), rng.choice(lx.CONDITIONS)
        steps = _prefix(sub, partner, cond) + _core(sub, partner, cond) + _suffix(sub, partner, cond)
    reactants = [sub, partner] if partner else [sub]
    rng.shuffle(reactants)
    conditions = [cond] + (["heat"] if cond != "heat" and rng.random() < 0.3 else [])  # harmless extra
    rng.shuffle(conditions)
    solvent = " in water" if partner != "water" and rng.random() < 0.2 else ""
    text = f"reactants : {' and '.join(reactants)}{solvent} . conditions : {' and '.join(conditions)} ."
    target = " ; ".join(f"{kind} {inter}" for kind, inter in steps)
    return (_long([text], rng, [text]) if long else text), target


def _spoil_steps(rng: random.Random, _input: str, target: str) -> str:
    steps = target.split(" ; ")
    if len(steps) > 1 and rng.random() < 0.5:
        steps.pop(rng.randrange(len(steps)))  # a step left out
    else:
        i = rng.randrange(len(steps))
        kind, inter = steps[i].split()
        steps[i] = f"{rng.choice([k for k in lx.STEP_TYPES if k != kind])} {inter}"  # mislabeled step
    return " ; ".join(steps)


# --- hoc -------------------------------------------------------------------------------------
HOC_ORDER = tuple(lx.HALLMARKS)


def _hoc(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (_long(sentences, rng, lx.HOC_FILLERS) if long else " ".join(sentences)), target


def _spoil_labels(rng: random.Random, _input: str, target: str) -> str:
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


def _sst2(rng: random.Random, long: bool) -> tuple[str, str]:
    text, score = _sst_text(rng)
    while score == 0:
        text, score = _sst_text(rng)
    label = "positive" if score > 0 else "negative"
    return (_long([text], rng, [text]) if long else text), label


def _flip_sentiment(rng: random.Random, _input: str, target: str) -> str:
    return "negative" if target == "positive" else "positive"


# --- csbench / openfindata / econlogicqa: option letters -------------------------------------
def _options(items: list[str], letters: str = "abcd") -> str:
    """Events to order: ``a prices rise b ...``."""
    return " ".join(f"{letter} {item}" for letter, item in zip(letters, items, strict=False))


def _choices(items: list[str]) -> str:
    """Answer options: ``heap a , queue b , ...`` (the letter after its option's text).

    Options keep one order per question, as in the real benchmarks: a 2-layer model trained for
    a few hundred steps does not learn to look a shuffled option's letter up in its input."""
    return " , ".join(f"{item} {letter}" for letter, item in zip("abcd", items, strict=False))


def _csbench(rng: random.Random, long: bool) -> tuple[str, str]:
    category = rng.choice(list(lx.CS_FACTS))
    facts = lx.CS_FACTS[category]
    prop = rng.choice(list(facts))
    answer = facts[prop]
    if rng.random() < 0.7:
        options = sorted(facts.values())  # like an exam's fixed options, in one order per question
        text = f"question : which {category} is used for {prop} ? {_choices(options)}"
        target = f"{answer} {'abcd'[options.index(answer)]}"  # the option, then its letter
    else:
        claimed = answer if rng.random() < 0.5 else rng.choice([e for e in facts.values() if e != answer])
        text = f"question : {claimed} is used for {prop} . true or false ?"
        target = "true" if claimed == answer else "false"
    return (_long([text], rng, [text]) if long else text), target


def _wrong_answer(rng: random.Random, _input: str, target: str) -> str:
    """Another option (its text and letter), the other truth value, or a shuffled order."""
    if target in ("true", "false"):
        return "false" if target == "true" else "true"
    words = target.split()
    if all(len(w) == 1 for w in words):  # an order: shuffle it
        wrong = words[:]
        while wrong == words:
            rng.shuffle(wrong)
        return " ".join(wrong)
    options = [part.strip() for part in _input.split("?")[-1].split(",")]  # "stack a , queue b , ..."
    return _other_choice(rng, [o for o in options if len(o.split()) == 2], target)


# (event, asset) -> move; unlisted pairs are unchanged
FIN_MOVES: dict[tuple[str, str], str] = {
    ("rates rise", "bonds"): "fall",
    ("rates rise", "stocks"): "fall",
    ("rates rise", "gold"): "fall",
    ("rates rise", "airlines"): "fall",
    ("rates fall", "bonds"): "rise",
    ("rates fall", "stocks"): "rise",
    ("rates fall", "gold"): "rise",
    ("rates fall", "airlines"): "rise",
    ("inflation rises", "bonds"): "fall",
    ("inflation rises", "gold"): "rise",
    ("inflation rises", "stocks"): "fall",
    ("earnings beat", "stocks"): "rise",
    ("earnings beat", "airlines"): "rise",
    ("earnings miss", "stocks"): "fall",
    ("earnings miss", "airlines"): "fall",
    ("oil spikes", "airlines"): "fall",
    ("oil spikes", "gold"): "rise",
    ("oil spikes", "stocks"): "fall",
}


def _openfindata(rng: random.Random, long: bool) -> tuple[str, str]:
    if rng.random() < 0.6:
        event, asset = rng.choice(lx.FIN_EVENTS), rng.choice(lx.FIN_ASSETS)
        answer = FIN_MOVES.get((event, asset), "unchanged")
        options = list(lx.FIN_MOVES)
        text_head = f"{event} . what happens to {asset} ?"
    else:
        answer = rng.choice(list(lx.FIN_INTENTS))
        verb = rng.choice(lx.FIN_INTENTS[answer])
        options = list(lx.FIN_INTENTS)
        text_head = f"client says : i want to {verb} my {rng.choice(lx.FIN_OBJECTS)} . intent ?"
    text = f"{text_head} {_choices(options)}"  # fixed options, like the real items
    return (_long([text], rng, [text]) if long else text), f"{answer} {'abc'[options.index(answer)]}"


def _econlogicqa(rng: random.Random, long: bool) -> tuple[str, str]:
    chain = list(rng.choice(lx.ECON_CHAINS))
    shown = chain[:]
    rng.shuffle(shown)
    text = f"order the events : {_options(shown)} ."
    target = " ".join("abcd"[shown.index(event)] for event in chain)
    return (_long([text], rng, [text]) if long else text), target


# --- gta -------------------------------------------------------------------------------------
def _calculation(rng: random.Random) -> tuple[str, str]:
    x, y, op = rng.choice(lx.DIGITS), rng.choice(lx.DIGITS), rng.choice(list(lx.OPERATORS))
    if op == "plus" and rng.random() < 0.25:
        return f"add {x} and {y}", f"calculator ( {x} + {y} )"
    if rng.random() < 0.4:
        z, op2 = rng.choice(lx.DIGITS), rng.choice(list(lx.OPERATORS))
        return (
            f"what is {x} {op} {y} {op2} {z} ?",
            f"calculator ( {x} {lx.OPERATORS[op]} {y} {lx.OPERATORS[op2]} {z} )",
        )
    return f"what is {x} {op} {y} ?", f"calculator ( {x} {lx.OPERATORS[op]} {y} )"


def _gta(rng: random.Random, long: bool) -> tuple[str, str]:
    """Requests whose wording overlaps across tools ("what is ... in ..."): the tool and its
    arguments depend on the words that matter (weather / news / a language / digits)."""
    tool = rng.choice(lx.TOOLS)
    city, agent = rng.choice(base_lx.PLACES), rng.choice(base_lx.AGENTS)
    if tool == "calculator":
        text, target = _calculation(rng)
    elif tool == "weather":
        text = rng.choice(
            (
                f"what is the weather in {city} ?",
                f"is it cold in {city} ?",
                f"what is the weather in {city} on {rng.choice(base_lx.DAYS)} ?",
            )
        )
        target = f"weather ( {city} )"
    elif tool == "search":
        if rng.random() < 0.5:
            text, target = f"find news about the {agent} in {city}", f"search ( {agent} {city} )"
        else:
            text, target = f"what is the news about the {agent} ?", f"search ( {agent} )"
    elif tool == "ocr":
        text, target = (
            rng.choice(("read the text in this image", "what is the text in this image ?")),
            "ocr ( image )",
        )
    else:
        word, lang = rng.choice(base_lx.NOUNS), rng.choice(lx.LANGUAGES)
        text = rng.choice((f"translate {word} to {lang}", f"what is {word} in {lang} ?"))
        target = f"translate ( {word} , {lang} )"
    return (_long([text], rng, [text]) if long else text), target


def _wrong_tool(rng: random.Random, _input: str, target: str) -> str:
    name, rest = target.split(" ", 1)
    return f"{rng.choice([t for t in lx.TOOLS if t != name])} {rest}"


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


def _lawbench(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (_long(sentences, rng, sentences) if long else " ".join(sentences)), target


def _spoil_law(rng: random.Random, _input: str, target: str) -> str:
    head = target.split()[0]
    if head == "罪名:":
        return f"罪名: {rng.choice([c for c in CHARGES if c not in target])}"
    if head == "刑期:":
        return f"刑期: {rng.choice([m for m in lx.LAW_MONTHS if m != target.split()[1]])} 个月"
    return f"正确答案: {rng.choice([x for x in 'ABCD' if x != target[-1]])}"


# name -> (make, corrupt, noise_rate, is_classification, description): generators.TaskGen's fields
ANALOGS: dict[str, tuple[Make, Corrupt, float, bool, str]] = {
    "ftbench-mini/aci": (
        _aci,
        _retry(_aci),
        0.10,
        False,
        "ACI-Bench analog: write a short visit note from a doctor-patient dialogue",
    ),
    "ftbench-mini/tomg": (
        _tomg,
        _spoil_smiles,
        0.10,
        False,
        "TOMG-Bench analog: generate or edit a molecule (space-separated SMILES)",
    ),
    "ftbench-mini/omebench": (
        _ome,
        _spoil_steps,
        0.15,
        False,
        "oMeBench analog: list a reaction's mechanism steps and intermediates",
    ),
    "ftbench-mini/hoc": (
        _hoc,
        _spoil_labels,
        0.15,
        False,
        "HoC analog: tag an abstract with the hallmarks of cancer it mentions",
    ),
    "ftbench-mini/sst2": (
        _sst2,
        _flip_sentiment,
        0.15,
        True,
        "SST-2 analog: binary sentiment of a movie review sentence",
    ),
    "ftbench-mini/csbench": (
        _csbench,
        _wrong_answer,
        0.10,
        True,
        "CS-Bench analog: computer-science multiple choice and true/false",
    ),
    "ftbench-mini/openfindata": (
        _openfindata,
        _wrong_answer,
        0.10,
        True,
        "OpenFinData analog: finance multiple choice (market moves, client intent)",
    ),
    "ftbench-mini/econlogicqa": (
        _econlogicqa,
        _wrong_answer,
        0.10,
        False,
        "EconLogicQA analog: put four economic events in causal order",
    ),
    "ftbench-mini/gta": (_gta, _wrong_tool, 0.15, False, "GTA analog: answer a request with one tool call"),
    "ftbench-mini/lawbench": (
        _lawbench,
        _spoil_law,
        0.10,
        False,
        "LawBench analog: Chinese criminal cases (charges, prison term, choice)",
    ),
}
