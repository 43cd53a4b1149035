"""Word lists of the ``ftbench-mini`` analogs: the single source their generators draw from.

Every word here joins ``lexicon.builtin_vocabulary()`` (through ``mini_vocabulary``), so the
word-level tokenizer of ``builtin:tiny-llama`` knows every analog text. Lists reuse the built-in
tasks' words where they fit; the vocabulary stays small so that the tiny model stays tiny.

Example::

    >>> from trex_ray.ftbench.mini_lexicon import mini_vocabulary
    >>> {"C", "(", "罪名:", "calculator", "apoptosis"} <= set(mini_vocabulary())
    True
"""

from __future__ import annotations

# TaskSpec names of the analogs (the "instruct" template writes "task: <name>").
ANALOG_TASK_NAMES: tuple[str, ...] = (
    "aci-mini",
    "tomg-mini",
    "omebench-mini",
    "hoc-mini",
    "sst2-mini",
    "csbench-mini",
    "openfindata-mini",
    "econlogicqa-mini",
    "gta-mini",
    "lawbench-mini",
)
DIGITS: tuple[str, ...] = tuple("123456789")

# --- aci: doctor-patient dialogue -> short visit note ----------------------------------------
SYMPTOMS: tuple[str, ...] = (
    "cough",
    "fever",
    "headache",
    "rash",
    "nausea",
    "dizziness",
    "fatigue",
    "wheezing",
)
# treatment -> the symptoms it is usually given for (the doctor may still pick another)
TREATMENTS: dict[str, tuple[str, ...]] = {
    "antibiotics": ("cough", "fever"),
    "ibuprofen": ("headache", "fever"),
    "cream": ("rash",),
    "fluids": ("nausea", "dizziness"),
    "rest": ("fatigue", "dizziness"),
    "inhaler": ("wheezing", "cough"),
}
UNITS: tuple[str, ...] = ("days", "weeks")
SEVERITY: tuple[str, ...] = ("mild", "severe")
ACI_SMALL_TALK: tuple[str, ...] = (
    "patient : it was a busy week .",
    "patient : i think it is not so bad .",
)
ACI_GLUE: tuple[str, ...] = (
    "doctor",
    "patient",
    ":",
    "what",
    "brings",
    "you",
    "in",
    "today",
    "?",
    "i",
    "have",
    "had",
    "a",
    "for",
    "any",
    "yes",
    "no",
    "will",
    "start",
    "how",
    "long",
    "it",
    "is",
    "plan",
    ".",
    ",",
)

# --- tomg: text-based open molecule generation ------------------------------------------------
SMILES_TOKENS: tuple[str, ...] = ("C", "N", "O", "(", ")", "=")
GROUPS: tuple[str, ...] = ("hydroxyl", "amino", "carboxyl", "methyl")
TOMG_GLUE: tuple[str, ...] = (
    "generate",
    "molecule",
    "with",
    "carbon",
    "nitrogen",
    "oxygen",
    "atoms",
    "and",
    "add",
    "to",
    "a",
    "remove",
    "from",
    "replace",
    "in",
    ",",
    ".",
)

# --- omebench: reaction -> mechanism steps (type intermediate ; ...) -------------------------
STEP_TYPES: tuple[str, ...] = ("protonation", "deprotonation", "attack", "elimination", "addition")
INTERMEDIATES: tuple[str, ...] = (
    "oxonium",
    "tetrahedral",
    "carboxylate",
    "hemiaminal",
    "imine",
    "enolate",
    "alkoxide",
    "aldol",
    "carbocation",
    "halonium",
    "dihalide",
    "ammonium",
    "enol",
    "acid",
    "alcohol",
    "alkene",
    "amine",
)
REAGENTS: tuple[str, ...] = (
    "ester",
    "water",
    "aldehyde",
    "amine",
    "ketone",
    "alkene",
    "alcohol",
    "halide",
    "halogen",
)
CONDITIONS: tuple[str, ...] = ("acid", "base", "heat")
OME_GLUE: tuple[str, ...] = ("reactants", "conditions", ":", "and", ".", ";", "in", "water")

# --- hoc: abstract sentence -> hallmarks of cancer (multi-label) -----------------------------
HALLMARKS: dict[str, tuple[str, ...]] = {  # label -> cue words
    "growth": ("proliferation",),
    "death": ("apoptosis",),
    "angiogenesis": ("vegf",),
    "invasion": ("metastasis",),
    "immune": ("lymphocytes",),
    "inflammation": ("cytokines",),
    "genome": ("mutations",),
    "metabolism": ("glycolysis",),
    "immortality": ("telomerase",),
    "suppressors": ("p53",),
}
HOC_SUBJECTS: tuple[str, ...] = ("the protein", "this gene", "the drug")
HOC_VERBS: tuple[str, ...] = ("promotes", "induces", "blocks", "increases", "reduces")
HOC_TISSUES: tuple[str, ...] = ("tumor", "human")
HOC_FILLERS: tuple[str, ...] = (
    "samples were analysed in the clinic .",
    "results were confirmed in mice .",
)
HOC_GLUE: tuple[str, ...] = ("cells", "in", "of", "none", ",", ".")

# --- sst2: movie review sentence -> positive / negative --------------------------------------
SST_NOUNS: tuple[str, ...] = ("film", "movie", "story", "ending", "music", "plot", "acting")
SST_POSITIVE: tuple[str, ...] = ("superb", "funny", "moving", "clever", "charming", "great", "good")
SST_NEGATIVE: tuple[str, ...] = ("dull", "boring", "tedious", "messy", "predictable", "bad", "awful")
SST_GLUE: tuple[str, ...] = (
    "the",
    "is",
    "was",
    "not",
    "very",
    "really",
    "but",
    "and",
    "although",
    ",",
    ".",
    "positive",
    "negative",
)

# --- csbench: computer-science multiple choice and true/false --------------------------------
CS_FACTS: dict[str, dict[str, str]] = {  # category -> {property: entity}
    "structure": {"lifo": "stack", "fifo": "queue", "priority": "heap", "hierarchy": "tree"},
    "protocol": {"reliability": "tcp", "datagrams": "udp", "names": "dns", "pages": "http"},
    "system": {"isolation": "process", "concurrency": "thread", "locking": "mutex", "paging": "memory"},
    "database": {"queries": "sql", "lookups": "index", "atomicity": "transaction", "schemas": "table"},
}
CS_GLUE: tuple[str, ...] = (
    "question",
    ":",
    "which",
    "is",
    "used",
    "for",
    "?",
    ".",
    "true",
    "false",
    "or",
    "a",
    "b",
    "c",
    "d",
)

# --- openfindata: finance multiple choice -----------------------------------------------------
FIN_EVENTS: tuple[str, ...] = (
    "rates rise",
    "rates fall",
    "inflation rises",
    "earnings beat",
    "earnings miss",
    "oil spikes",
)
FIN_ASSETS: tuple[str, ...] = ("bonds", "stocks", "gold", "airlines")
FIN_MOVES: tuple[str, ...] = ("rise", "fall", "unchanged")
FIN_INTENTS: dict[str, tuple[str, ...]] = {  # intent -> verbs a client uses
    "buy": ("purchase", "add"),
    "sell": ("redeem", "sell"),
    "query": ("check", "see"),
}
FIN_OBJECTS: tuple[str, ...] = ("fund", "shares", "bonds", "gold")
FIN_GLUE: tuple[str, ...] = (
    "what",
    "happens",
    "to",
    "?",
    ".",
    ":",
    "a",
    "b",
    "c",
    "client",
    "says",
    "i",
    "want",
    "my",
    "intent",
)

# --- econlogicqa: order four economic events --------------------------------------------------
ECON_CHAINS: tuple[tuple[str, ...], ...] = (
    ("rates rise", "borrowing falls", "investment falls", "growth falls"),
    ("demand rises", "prices rise", "production rises", "hiring rises"),
    ("costs rise", "prices rise", "sales fall", "profits fall"),
    ("tariffs rise", "imports fall", "prices rise", "inflation rises"),
    ("confidence falls", "spending falls", "sales fall", "layoffs rise"),
    ("supply falls", "prices rise", "demand falls", "inventory rises"),
    ("wages rise", "spending rises", "demand rises", "prices rise"),
    ("taxes fall", "income rises", "spending rises", "growth rises"),
    ("oil rises", "costs rise", "profits fall", "stocks fall"),
    ("currency falls", "exports rise", "production rises", "hiring rises"),
)
ECON_GLUE: tuple[str, ...] = ("order", "the", "events", ":", "a", "b", "c", "d", ".")

# --- gta: user query -> one tool call ---------------------------------------------------------
TOOLS: tuple[str, ...] = ("calculator", "weather", "search", "ocr", "translate")
OPERATORS: dict[str, str] = {"plus": "+", "minus": "-", "times": "*"}
LANGUAGES: tuple[str, ...] = ("french", "german", "spanish")
GTA_GLUE: tuple[str, ...] = (
    "what",
    "is",
    "the",
    "in",
    "?",
    "find",
    "news",
    "about",
    "read",
    "text",
    "this",
    "image",
    "to",
    "(",
    ")",
    ",",
    "add",
    "and",
    "it",
    "cold",
    "on",
)

# --- lawbench: Chinese criminal cases (space-separated words) --------------------------------
LAW_DEFENDANTS: tuple[str, ...] = ("张某", "李某")
LAW_PLACES: tuple[str, ...] = ("商场", "家中", "路上")
# charge -> the act that reveals it
LAW_ACTS: dict[str, str] = {"盗窃": "窃取", "诈骗": "骗取", "抢劫": "抢走", "职务侵占": "侵吞"}
LAW_ITEMS: tuple[str, ...] = ("手机", "现金", "财物")
LAW_AMOUNTS: tuple[str, ...] = ("500", "2000", "8000", "30000")
LAW_MONTHS: tuple[str, ...] = ("3", "6", "12", "24", "36")  # sentence brackets, shortest first
LAW_GLUE: tuple[str, ...] = (
    "被告人",
    "在",
    "价值",
    "元",
    ",",
    ".",
    "罪名:",
    ";",
    "刑期:",
    "个月",
    "到案后",
    "自首",
    "系",
    "累犯",
    "问题",
    ":",
    "构成",
    "何",
    "罪",
    "?",
    "正确答案:",
    "A",
    "B",
    "C",
    "D",
)


def _words(*groups: object) -> set[str]:
    out: set[str] = set()
    for group in groups:
        if isinstance(group, dict):
            out |= _words(*group.keys(), *group.values())
        elif isinstance(group, (tuple, list)):
            out |= _words(*group)
        else:
            out.update(str(group).split())
    return out


def mini_vocabulary() -> list[str]:
    """Sorted words of every ftbench-mini analog (task names included)."""
    words = _words(
        ANALOG_TASK_NAMES,
        DIGITS,
        SYMPTOMS,
        TREATMENTS,
        UNITS,
        SEVERITY,
        ACI_SMALL_TALK,
        ACI_GLUE,
        SMILES_TOKENS,
        GROUPS,
        TOMG_GLUE,
        STEP_TYPES,
        INTERMEDIATES,
        REAGENTS,
        CONDITIONS,
        OME_GLUE,
        HALLMARKS,
        HOC_SUBJECTS,
        HOC_VERBS,
        HOC_TISSUES,
        HOC_FILLERS,
        HOC_GLUE,
        SST_NOUNS,
        SST_POSITIVE,
        SST_NEGATIVE,
        SST_GLUE,
        CS_FACTS,
        CS_GLUE,
        FIN_EVENTS,
        FIN_ASSETS,
        FIN_MOVES,
        FIN_INTENTS,
        FIN_OBJECTS,
        FIN_GLUE,
        ECON_CHAINS,
        ECON_GLUE,
        TOOLS,
        OPERATORS,
        LANGUAGES,
        GTA_GLUE,
        LAW_DEFENDANTS,
        LAW_PLACES,
        LAW_ACTS,
        LAW_ITEMS,
        LAW_AMOUNTS,
        LAW_MONTHS,
        LAW_GLUE,
    )
    return sorted(words)
