"""ftbench-mini generators with structured targets: TOMG-Bench, oMeBench, CS-Bench, OpenFinData,
EconLogicQA and GTA analogs (SMILES, mechanism steps, option letters, tool calls).

Each ``make_*`` is ``(rng, long) -> (input, target)``; each ``spoil_*`` / ``wrong_*`` is the
train-split corruption ``(rng, input, target) -> wrong target`` (see ``generators.TaskGen``).
"""

from __future__ import annotations

import random

from trex_ray.ftbench import lexicon as base_lx
from trex_ray.ftbench import mini_lexicon as lx
from trex_ray.ftbench.mini_common import long_input, other_choice

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


def make_tomg(rng: random.Random, long: bool) -> tuple[str, str]:
    if rng.random() < 0.5:
        c, n, o = rng.randint(1, 4), rng.randint(0, 2), rng.randint(0, 2)
        parts = [f"{c} carbon"] + [f"{n} nitrogen"] * bool(n) + [f"{o} oxygen"] * bool(o)
        rng.shuffle(parts)
        listed = parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
        text, target = f"generate a molecule with {listed} atoms .", _arrange(rng, _composition(c, n, o))
    else:
        text, target = _tomg_edit(rng)
    return (long_input([text], rng, [text]) if long else text), " ".join(target)


def spoil_smiles(rng: random.Random, _input: str, target: str) -> str:
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


def make_omebench(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (long_input([text], rng, [text]) if long else text), target


def spoil_steps(rng: random.Random, _input: str, target: str) -> str:
    steps = target.split(" ; ")
    if len(steps) > 1 and rng.random() < 0.5:
        steps.pop(rng.randrange(len(steps)))  # a step left out
    else:
        i = rng.randrange(len(steps))
        kind, inter = steps[i].split()
        steps[i] = f"{rng.choice([k for k in lx.STEP_TYPES if k != kind])} {inter}"  # mislabeled step
    return " ; ".join(steps)


# --- csbench / openfindata / econlogicqa: option letters -------------------------------------
def _options(items: list[str], letters: str = "abcd") -> str:
    """Events to order: ``a prices rise b ...``."""
    return " ".join(f"{letter} {item}" for letter, item in zip(letters, items, strict=False))


def _choices(items: list[str]) -> str:
    """Answer options: ``heap a , queue b , ...`` (the letter after its option's text).

    Options keep one order per question, as in the real benchmarks: a 2-layer model trained for
    a few hundred steps does not learn to look a shuffled option's letter up in its input."""
    return " , ".join(f"{item} {letter}" for letter, item in zip("abcd", items, strict=False))


def make_csbench(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (long_input([text], rng, [text]) if long else text), target


def wrong_answer(rng: random.Random, _input: str, target: str) -> str:
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
    return other_choice(rng, [o for o in options if len(o.split()) == 2], target)


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


def make_openfindata(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (long_input([text], rng, [text]) if long else text), f"{answer} {'abc'[options.index(answer)]}"


def make_econlogicqa(rng: random.Random, long: bool) -> tuple[str, str]:
    chain = list(rng.choice(lx.ECON_CHAINS))
    shown = chain[:]
    rng.shuffle(shown)
    text = f"order the events : {_options(shown)} ."
    target = " ".join("abcd"[shown.index(event)] for event in chain)
    return (long_input([text], rng, [text]) if long else text), target


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


def make_gta(rng: random.Random, long: bool) -> tuple[str, str]:
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
    return (long_input([text], rng, [text]) if long else text), target


def wrong_tool(rng: random.Random, _input: str, target: str) -> str:
    name, rest = target.split(" ", 1)
    return f"{rng.choice([t for t in lx.TOOLS if t != name])} {rest}"
