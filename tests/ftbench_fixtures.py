"""A few rows per FT-Bench task in its real source's schema (columns, types, file layout), written as
local files: ``DATA_DIR/<task>/train.<ext>`` and, where the source has a test split, ``test.<ext>``.

The schemas are the ones docs/ftbench.md records as the sources': HoC's ``label`` is a list of
ClassLabel, SST-2's ``label`` a ClassLabel (0/1), GTA's ``dataset.json`` an object keyed by query id
whose turns mix text and objects, oMeBench's mechanism a list of step objects, LawBench's files a
JSON list, CS-Bench's test file JSON lines under a ``.json`` name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, Features, Sequence, Value

from trex_ray.ftbench.real import HOC_LABELS


def _json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _parquet(path: Path, rows: dict[str, list[Any]], features: Features) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(rows, features=features).to_parquet(str(path))


def aci(root: Path) -> None:
    def rows(n: int, off: int) -> dict[str, list[str]]:
        return {"encounter_id": [f"D2N{off + i:03d}" for i in range(n)],
                "dataset": ["virtassist"] * n,
                "dialogue": [f"[doctor] hi , what brings you in ?\n[patient] a cough for {off + i + 2} days ."
                             for i in range(n)],
                "note": [f"CHIEF COMPLAINT\n\nCough for {off + i + 2} days." for i in range(n)]}
    features = Features({k: Value("string") for k in ("encounter_id", "dataset", "dialogue", "note")})
    _parquet(root / "aci" / "train.parquet", rows(4, 0), features)
    _parquet(root / "aci" / "test.parquet", rows(2, 10), features)


def tomg(root: Path) -> None:
    path = root / "tomg" / "train.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["SubTask,Instruction,molecule"]
    pairs = [("Please generate a molecule with 2 carbon atoms and 1 oxygen atom.", "CCO"),
             ("Please generate a molecule with 3 carbon atoms.", "CCC"),
             ("Please add a hydroxyl to the molecule CC.", "CCO"),
             ("Please generate a molecule with 1 nitrogen and 2 carbon atoms.", "CCN"),
             ("Please generate a molecule with 4 carbon atoms.", "CCCC")]
    for i, (ins, mol) in enumerate(pairs):
        lines.append(f"AtomNum,\"{ins}\",{mol}" if i != 2 else f"AddComponent,\"{ins}\",{mol}")
    path.write_text("\n".join(lines) + "\n")


def _reaction(i: int) -> dict[str, Any]:
    return {"reaction_id": f"NR-{i:03d}", "level": "easy", "name": "Base-catalyzed Aldol addition",
            "reactants_smiles": ["CC=O", "C" * (i + 1) + "C=O"], "products_smiles": ["CC(O)CC=O"],
            "conditions": "Base",
            "mechanism_step_nums": 2,
            "mechanism": [{"step": 1, "type": "proton_transfer", "subtype": "acid_base_proton_transfer",
                           "intermediate_smiles": "[CH2-]C=O", "step_weight": 0.4},
                          {"step": 2, "type": "addition", "subtype": "nucleophilic_addition",
                           "intermediate_smiles": "CC([O-])CC=O", "step_weight": 0.6}]}


def omebench(root: Path) -> None:
    _jsonl(root / "omebench" / "train.jsonl", [_reaction(i) for i in range(4)])
    _json(root / "omebench" / "test.json", [_reaction(10 + i) for i in range(2)])


def hoc(root: Path) -> None:
    features = Features({"document_id": Value("string"), "text": Value("string"),
                         "label": Sequence(ClassLabel(names=list(HOC_LABELS)))})

    def rows(labels: list[list[int]], off: int) -> dict[str, list[Any]]:
        n = len(labels)
        return {"document_id": [f"{1000 + off + i}_0" for i in range(n)],
                "text": [f"Sentence {off + i} of an abstract about tumour cells." for i in range(n)],
                "label": labels}
    _parquet(root / "hoc" / "train.parquet", rows([[7], [4, 5], [9], [7]], 0), features)
    _parquet(root / "hoc" / "test.parquet", rows([[4], [8, 9]], 10), features)


def sst2(root: Path) -> None:
    features = Features({"idx": Value("int32"), "sentence": Value("string"),
                         "label": ClassLabel(names=["negative", "positive"])})
    train = {"idx": [0, 1, 2, 3], "sentence": ["a gorgeous film", "dull and tired", "warm and funny",
                                                 "a mess"], "label": [1, 0, 1, 0]}
    test = {"idx": [0, 1], "sentence": ["a delight", "painfully slow"], "label": [1, 0]}
    _parquet(root / "sst2" / "train.parquet", train, features)
    _parquet(root / "sst2" / "test.parquet", test, features)


def _cs_item(i: int, fmt: str = "Multiple-choice") -> dict[str, Any]:
    item = {"ID": i, "Split": "Valid", "Domain": "Data Structure and Algorithm", "SubDomain": "Stack",
            "Format": fmt, "Tag": "Knowledge", "Language": "English"}
    if fmt == "Multiple-choice":
        item |= {"Question": f"Which structure is LIFO? ({i})", "A": "Queue", "B": "Stack", "C": "Heap",
                 "D": "Tree", "Answer": "B"}
    elif fmt == "Assertion":
        item |= {"Question": f"A stack is first in, first out. ({i})", "Answer": False}
    else:
        item |= {"Question": f"A stack is ___ in, first out. ({i})", "Answer": "last"}
    return item


def csbench(root: Path) -> None:
    _json(root / "csbench" / "train.json",
          [_cs_item(1), _cs_item(2, "Assertion"), _cs_item(3), _cs_item(4, "Fill-in-the-blank"), _cs_item(5)])
    _jsonl(root / "csbench" / "test.json", [_cs_item(10), _cs_item(11, "Assertion")])  # lines, .json name


def openfindata(root: Path) -> None:
    rows = [{"id": i, "question": f"利率上升时，债券价格会怎样？({i})", "A": "上升", "B": "下降", "C": "不变",
             "answer": "B"} for i in range(5)]
    _json(root / "openfindata" / "train.json", rows)


def econlogicqa(root: Path) -> None:
    path = root / "econlogicqa"
    path.mkdir(parents=True, exist_ok=True)
    head = "Question,A,B,C,D,Answer\n"
    row = ('"Order the events of a rate hike ({i}):",Rates rise,Borrowing falls,'
           'Investment slows,Growth cools,"A, B, C, D"\n')
    (path / "train.csv").write_text(head + "".join(row.format(i=i) for i in range(4)))
    (path / "test.csv").write_text(head + "".join(row.format(i=10 + i) for i in range(2)))


def gta(root: Path) -> None:
    def query(i: int) -> dict[str, Any]:
        return {"tools": [{"name": "Calculator", "description": "A calculator tool.", "inputs": [],
                           "outputs": []}, {"name": "OCR", "description": "Reads text."}],
                "files": [{"type": "image", "path": f"image/image_{i}.jpg", "url": None}],
                "dialogs": [{"role": "user", "content": f"What is {i} plus 2?"},
                            {"role": "assistant", "tool_calls": [{"type": "function", "function": {
                                "name": "Calculator", "arguments": {"expression": f"{i}+2"}}}]},
                            {"role": "tool", "name": "Calculator",
                             "content": {"type": "text", "content": str(i + 2)}},
                            {"role": "assistant", "content": str(i + 2)}],
                "gt_answer": {"whitelist": [[str(i + 2)]], "blacklist": None}}
    _json(root / "gta" / "train.json", {str(i): query(i) for i in range(5)})  # an object keyed by id


def lawbench(root: Path) -> None:
    rows = [{"instruction": "请你模拟法官依据下面事实给出罪名，只需要给出罪名的名称。",
             "question": f"事实:被告人在商场窃取手机一部，价值{2000 + i}元。", "answer": "罪名:盗窃"}
            for i in range(3)]
    rows += [{"instruction": "请根据下面的事实给出刑期。", "question": "事实:被告人盗窃财物价值5000元。",
              "answer": "刑期:6个月"},
             {"instruction": "请回答下面的单项选择题。",
              "question": "盗窃罪属于哪一类犯罪？A.财产犯罪 B.职务犯罪", "answer": "正确答案:A"}]
    _json(root / "lawbench" / "train.json", rows)


WRITERS = {"aci": aci, "tomg": tomg, "omebench": omebench, "hoc": hoc, "sst2": sst2, "csbench": csbench,
           "openfindata": openfindata, "econlogicqa": econlogicqa, "gta": gta, "lawbench": lawbench}


def write_all(root: Path) -> Path:
    """Every task's fixture files under ``root``; returns ``root`` (a ``--data-dir``)."""
    for write in WRITERS.values():
        write(root)
    return root
