"""The ten real FT-Bench tasks: where each one's data lives, how it becomes input / target, how it is
scored, and TREX's published score. docs/ftbench.md says per task what is known and what is guessed.

``real_task(name)`` is the task on its public sources with Qwen3-1.7B (TREX's base model);
``real_task(name, model=..., data_dir=...)`` runs any base model, on a local copy of the sources:
``DATA_DIR/<task>/train.<ext>`` (and ``test.<ext>``, else the test split is cut from train), files in
the real source's schema (json, jsonl, csv or parquet).

Example::

    >>> real_task("sst2").data.eval.split
    'validation'
    >>> bench_task("gta").train.convert
    'gta'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from trex_ray.spec import Budget, DataSource, DataSpec, MetricName, MetricSpec, ModelSpec, Resources, TaskSpec

BASE_MODEL = "Qwen/Qwen3-1.7B"
GITHUB = "https://raw.githubusercontent.com"
HOC_LABELS = (  # bigbio/hallmarks_of_cancer's ClassLabel names, in its order
    "evading growth suppressors", "tumor promoting inflammation", "enabling replicative immortality",
    "cellular energetics", "resisting cell death", "activating invasion and metastasis",
    "genomic instability and mutation", "none", "inducing angiogenesis",
    "sustaining proliferative signaling", "avoiding immune destruction",
)
LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


@dataclass(frozen=True)
class Src:
    """One public source: a hub split, a hub repo's file, or a URL; how its columns are read."""

    id: str
    split: str = "train"
    config: str | None = None
    revision: str | None = None
    data_file: str | None = None
    convert: str | None = None
    input_field: str = "input"
    target_field: str = "target"
    label_names: tuple[str, ...] | None = None

    def source(self, split: str | None = None) -> DataSource:
        fields = {} if self.convert else {"input_field": self.input_field, "target_field": self.target_field}
        return DataSource(id=self.id, split=split or self.split, config=self.config, revision=self.revision,
                          data_file=self.data_file, convert=self.convert, label_names=self.label_names,
                          **fields)

    def local(self, path: Path) -> DataSource:
        """The same reading of a local copy of the source."""
        return replace(self, id=str(path), split="train", config=None, revision=None, data_file=None).source()


@dataclass(frozen=True)
class BenchTask:
    """One FT-Bench task: its sources, instruction (the chat system message), metric, TREX's score."""

    name: str
    title: str
    metric: MetricName
    instruction: str
    train: Src
    test: Src | None  # None: the test split is cut from train (data.test_size)
    trex: float | None  # TREX's published score on this task, as a fraction; None where not found
    max_new_tokens: int
    mini_new_tokens: int
    max_seq_len: int = 2048
    mini_train: int = 1200  # train examples of the offline analog (of 2000 generated)
    extra_train: tuple[Src, ...] = ()

    @property
    def analog(self) -> str:
        return f"ftbench-mini/{self.name}"

    @property
    def sources(self) -> list[Src]:
        return [self.train, *self.extra_train, *([self.test] if self.test else [])]


def _lawbench(task: str) -> Src:
    return Src(f"{GITHUB}/open-compass/LawBench/main/data/zero_shot/{task}.json", convert="lawbench")


def _hoc(split: str) -> Src:
    return Src("bigbio/hallmarks_of_cancer", split, config="hallmarks_of_cancer_source",
               revision="refs/convert/parquet", input_field="text", target_field="label",
               label_names=HOC_LABELS)


BENCH: tuple[BenchTask, ...] = (
    BenchTask(
        "aci", "ACI-Bench: clinical note from a doctor-patient dialogue", MetricName.rouge1,
        "Write the clinical visit note for this doctor-patient conversation.",
        Src("mkieffer/ACI-Bench", "train", input_field="dialogue", target_field="note"),
        Src("mkieffer/ACI-Bench", "test", input_field="dialogue", target_field="note"),
        0.502, 1024, 12, 8192,
    ),
    BenchTask(
        "tomg", "TOMG-Bench: text-based open molecule generation", MetricName.tomg_score,
        "Follow the chemist's instruction and answer with the SMILES string of the molecule only.",
        Src("Duke-de-Artois/TOMG-Bench", data_file="OpenMolIns/light/train.csv",
            input_field="Instruction", target_field="molecule"),
        None, 0.681, 256, 12,
    ),
    BenchTask(
        "omebench", "oMeBench: organic reaction mechanism elucidation", MetricName.ome_score,
        "Give the mechanism of this reaction as a JSON list of steps, each with its subtype and "
        "intermediate_smiles.",
        Src(f"{GITHUB}/skylarkie/oMeBench/main/data/oMe_Silver.jsonl", convert="omebench"),
        Src(f"{GITHUB}/skylarkie/oMeBench/main/data/oMe_Gold.json", convert="omebench"),
        0.484, 2048, 12, 4096, mini_train=300,
    ),
    BenchTask(
        "hoc", "HoC: hallmarks of cancer (multi-label)", MetricName.macro_f1,
        "Which hallmarks of cancer does this sentence of an abstract discuss? Answer with the "
        f"comma-separated hallmarks, or none. Hallmarks: {', '.join(h for h in HOC_LABELS if h != 'none')}.",
        _hoc("train"), _hoc("test"),
        0.897, 64, 8,
    ),
    BenchTask(
        "sst2", "SST-2: binary sentiment", MetricName.accuracy,
        "Is the sentiment of this movie-review sentence positive or negative?",
        Src("stanfordnlp/sst2", "train", input_field="sentence", target_field="label",
            label_names=("negative", "positive")),
        Src("stanfordnlp/sst2", "validation", input_field="sentence", target_field="label",
            label_names=("negative", "positive")),
        0.972, 4, 2, 512,
    ),
    BenchTask(
        "csbench", "CS-Bench: computer-science knowledge", MetricName.mc_accuracy,
        "Answer the computer-science question with the option letter, or true / false for a statement.",
        Src(f"{GITHUB}/csbench/csbench/main/Dataset/CSBench-EN/valid.json", convert="csbench"),
        Src(f"{GITHUB}/csbench/csbench/main/data/en_test.json", convert="csbench"),
        0.581, 16, 2,
    ),
    BenchTask(
        "openfindata", "OpenFinData: Chinese financial evaluation", MetricName.mc_accuracy,
        "请回答这道金融问题，只回答选项字母。",
        Src("opencompass/OpenFinData", convert="openfindata"),
        None, 0.699, 16, 2,
    ),
    BenchTask(
        "econlogicqa", "EconLogicQA: order economic events", MetricName.mc_accuracy,
        "Order the events; answer with their letters in order, e.g. B, A, D, C.",
        Src("yinzhu-quan/econ_logic_qa", "train", convert="econlogicqa"),
        Src("yinzhu-quan/econ_logic_qa", "test", convert="econlogicqa"),
        0.454, 16, 5,
    ),
    BenchTask(
        "gta", "GTA: general tool agents (tool-call accuracy)", MetricName.tool_call_accuracy,
        'Pick the tool that serves the user\'s request and reply with one call as JSON {"name": ..., '
        '"arguments": ...}.',
        Src("Jize1/GTA", data_file="dataset.json", convert="gta"),
        None, 0.652, 256, 10, 4096,
    ),
    BenchTask(
        "lawbench", "LawBench: Chinese law (hybrid score)", MetricName.lawbench_score,
        "你是一名中国法律专家，请按题目要求作答。",
        _lawbench("3-3"), None, 0.421, 256, 6, 4096,
        extra_train=(_lawbench("3-4"), _lawbench("1-2")),
    ),
)
_BY_NAME = {t.name: t for t in BENCH}


def bench_task(name: str) -> BenchTask:
    if name not in _BY_NAME:
        raise ValueError(f"FT-Bench task {name!r} is unknown; use one of {list(_BY_NAME)}")
    return _BY_NAME[name]


def _local_file(folder: Path, stem: str) -> Path | None:
    found = [folder / f"{stem}{s}" for s in LOCAL_SUFFIXES if (folder / f"{stem}{s}").is_file()]
    return found[0] if found else None


def _data(t: BenchTask, data_dir: str | Path | None) -> DataSpec:
    if data_dir is None:
        train = [t.train.source(), *(s.source() for s in t.extra_train)]
        return DataSpec(train=train, eval=t.test.source() if t.test else None)
    folder = Path(data_dir).expanduser().absolute() / t.name
    train_file, test_file = _local_file(folder, "train"), _local_file(folder, "test")
    if train_file is None:
        raise ValueError(f"--data-dir: no {folder}/train.<{'|'.join(s[1:] for s in LOCAL_SUFFIXES)}> "
                         f"for task {t.name}; put its train file there in the source's schema")
    test = (t.test or t.train).local(test_file) if test_file else None
    return DataSpec(train=[t.train.local(train_file)], eval=test)


def real_task(name: str, model: str | None = None, data_dir: str | Path | None = None) -> TaskSpec:
    """The real FT-Bench task: its public data (or ``data_dir``'s copy), Qwen3-1.7B (or ``model``),
    one GPU per trial."""
    t = bench_task(name)
    return TaskSpec(
        name=t.name,
        description=t.instruction,
        model=ModelSpec(id=model or BASE_MODEL, max_seq_len=t.max_seq_len),
        data=_data(t, data_dir),
        metric=MetricSpec(name=t.metric),
        budget=Budget(max_nodes=24, trial_timeout_seconds=6 * 3600),
        resources=Resources(cpus_per_worker=8, gpus_per_worker=1),
        max_new_tokens=t.max_new_tokens,
    )
