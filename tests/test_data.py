"""Data loading, each data op, prepare's cache and the planner's data profile; no Ray."""

from __future__ import annotations

import json
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

from trex_ray.execute.data import OPS, DataError, OpContext, prepare
from trex_ray.execute.metrics import normalize
from trex_ray.execute.noise import label_scores
from trex_ray.execute.profile import profile
from trex_ray.execute.sources import load_source, load_train
from trex_ray.ftbench import builtin_task, generate
from trex_ray.spec import DataOp, DataRecipe, DataSource, DataSpec, TaskSpec


def meta_ds(name: str, seed: int = 0) -> Dataset:
    """A generated train split with the generator's knowledge (noisy / long / duplicate) attached."""
    return Dataset.from_list(generate(name, "train", seed=seed, with_meta=True))


def ctx(name: str = "sentiment", seed: int = 0) -> OpContext:
    return OpContext(task=builtin_task(name), seed=seed)


def test_every_op_has_its_schema_in_the_spec_and_its_code_in_execute():
    from trex_ray.spec.data_ops import CHECKS, OP_SUMMARIES

    assert set(OPS) == set(OP_SUMMARIES) == set(CHECKS)
    assert all(s and "\n" not in s for s in OP_SUMMARIES.values())


def run_op(op: str, ds: Dataset, params: dict | None = None, context: OpContext | None = None) -> Dataset:
    return OPS[op](ds, params or {}, context or ctx())


@pytest.fixture
def local_jsonl(tmp_path: Path) -> Path:
    rows = [
        {"text": "Hello   world", "label": 1},
        {"text": "hello world.", "label": 1},
        {"text": "a much longer sentence with quite a few words in it", "label": 0},
        {"text": "short one", "label": 0},
        {"text": "another example", "label": 1},
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def local_source(path: Path, **kw: object) -> DataSource:
    return DataSource(id=str(path), input_field="text", target_field="label", **kw)


# --- loading ---------------------------------------------------------------------------------
def test_load_builtin() -> None:
    ds = load_source(DataSource(id="builtin:reverse", split="eval", limit=10))
    assert ds.column_names == ["input", "target", "system", "history"] and len(ds) == 10


def test_load_local_jsonl_renames_casts_limits(local_jsonl: Path) -> None:
    ds = load_source(local_source(local_jsonl, limit=3))
    assert ds.column_names == ["input", "target", "system", "history"] and len(ds) == 3
    assert ds[0] == {"input": "Hello   world", "target": "1", "system": "", "history": "[]"}


def test_load_local_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"input": ["a b", "c d"], "target": ["b a", "d c"]}), path)
    assert load_source(DataSource(id=str(path)))["target"][:] == ["b a", "d c"]


def test_load_errors_name_the_source_and_fix(
    tmp_path: Path, local_jsonl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_source(DataSource(id=str(tmp_path / "missing.jsonl")))
    with pytest.raises(DataError, match="set input_field to one of"):
        load_source(DataSource(id=str(local_jsonl)))
    with pytest.raises(DataError, match="no such built-in task"):
        load_source(DataSource(id="builtin:poetry"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="trex-test/missing.*local .jsonl"):
        load_source(DataSource(id="trex-test/missing"))


# --- ops -------------------------------------------------------------------------------------
def test_dedup_on_generated_removes_planted_duplicates() -> None:
    ds = meta_ds("headline")
    out = run_op("dedup", ds)
    assert not any(out["duplicate"])
    assert len({normalize(x) for x in out["input"]}) == len(out)
    assert len(out) <= len(ds) - sum(ds["duplicate"])
    assert out[0] == ds[0]


def test_dedup_normalizes_and_keeps_first(local_jsonl: Path) -> None:
    ds = load_source(local_source(local_jsonl))
    out = run_op("dedup", ds)
    long_one = "a much longer sentence with quite a few words in it"
    assert list(out["input"]) == ["Hello   world", long_one, "short one", "another example"]


def test_length_filter() -> None:
    ds = meta_ds("sentiment")
    out = run_op("length_filter", ds)
    assert not any(out["long"]) and len(out) == len(ds) - sum(ds["long"])
    short = run_op("length_filter", ds, {"min_words": 20, "max_words": 30})
    assert all(20 <= len(x.split()) + 1 <= 30 for x in short["input"])


def test_subsample_n_fraction_seeded() -> None:
    ds = meta_ds("reverse")
    a = run_op("subsample", ds, {"n": 100})
    assert len(a) == 100 and list(a["input"]) == list(run_op("subsample", ds, {"n": 100})["input"])
    assert list(a["input"]) != list(run_op("subsample", ds, {"n": 100}, ctx(seed=1))["input"])
    assert len(run_op("subsample", ds, {"fraction": 0.25})) == 500
    assert len(run_op("subsample", ds, {"n": 10**6})) == len(ds)


def mixed_task(local: Path) -> TaskSpec:
    base = builtin_task("sentiment")
    train = [DataSource(id="builtin:sentiment", weight=3.0), local_source(local)]
    data = DataSpec(train=train, eval=base.data.eval)
    return base.model_copy(update={"data": data})


def test_source_mix_weights_and_upsampling(local_jsonl: Path) -> None:
    task = mixed_task(local_jsonl)
    ds = load_train(task)
    out = run_op("source_mix", ds, {"n": 400}, OpContext(task=task))
    sources = list(out["source"])
    assert len(out) == 400 and sources.count("builtin:sentiment") == 300
    local_inputs = [x for x, s in zip(out["input"], sources, strict=True) if s == str(local_jsonl)]
    assert len(local_inputs) == 100 and len(set(local_inputs)) == 5  # 5 rows upsampled to 100
    even = run_op("source_mix", ds, {"n": 100, "weights": {"builtin:sentiment": 1.0}}, OpContext(task=task))
    assert list(even["source"]).count("builtin:sentiment") == 50


def precision_recall(flags: list[bool], noisy: list[bool]) -> tuple[float, float]:
    hits = sum(f and n for f, n in zip(flags, noisy, strict=True))
    return hits / max(1, sum(flags)), hits / max(1, sum(noisy))


@pytest.mark.parametrize(
    ("name", "min_prec", "min_rec"),
    [("sentiment", 0.7, 0.3), ("reverse", 0.95, 0.7), ("headline", 0.95, 0.7)],
)
def test_label_noise_filter_drops_mostly_corrupted(name: str, min_prec: float, min_rec: float) -> None:
    ds = meta_ds(name, seed=1)
    blind = ds.remove_columns(["noisy", "long", "duplicate"])  # the filter sees only input / target
    out = run_op("label_noise_filter", blind)
    kept = set(out["input"])
    assert len(out) < len(ds)
    flags = [x not in kept for x in ds["input"]]  # (inputs shared by duplicates share the verdict)
    precision, recall = precision_recall(flags, list(ds["noisy"]))
    assert precision >= min_prec and recall >= min_rec, (precision, recall)
    noise_before = sum(ds["noisy"]) / len(ds)
    kept_noisy = [n for x, n in zip(ds["input"], ds["noisy"], strict=True) if x in kept]
    noise_after = sum(kept_noisy) / len(kept_noisy)
    assert noise_after < 0.8 * noise_before


def test_label_scores_low_for_flipped_labels() -> None:
    recs = generate("sentiment", "train", with_meta=True)
    scores = label_scores([r["input"] for r in recs], [r["target"] for r in recs])
    clean = [s for s, r in zip(scores, recs, strict=True) if not r["noisy"]]
    noisy = [s for s, r in zip(scores, recs, strict=True) if r["noisy"]]
    assert sum(noisy) / len(noisy) < 0.5 * sum(clean) / len(clean)


def test_op_errors_name_op_and_fix() -> None:
    ds = meta_ds("reverse")
    with pytest.raises(DataError, match="'subsample'.*exactly one of"):
        run_op("subsample", ds, {})
    with pytest.raises(DataError, match="'length_filter'.*unknown params \\['max_len'\\]"):
        run_op("length_filter", ds, {"max_len": 3})
    with pytest.raises(DataError, match="'label_noise_filter'.*threshold"):
        run_op("label_noise_filter", ds, {"threshold": 2})


# --- prepare ---------------------------------------------------------------------------------
RECIPE = DataRecipe(ops=[DataOp(op="dedup"), DataOp(op="length_filter"), DataOp(op="label_noise_filter")],
                    template="instruct")


def test_prepare_splits_renders_and_counts(tmp_path: Path) -> None:
    prepared = prepare(RECIPE, builtin_task("sentiment"), tmp_path)
    assert {"prompt", "target", "input"} <= set(prepared.train.column_names)
    assert {"prompt", "target", "input"} <= set(prepared.eval.column_names)
    assert len(prepared.val) == 200  # 10 % of the 2000 raw train rows, cut before any op
    assert len(prepared.eval) == 300
    row = prepared.train[0]
    assert row["prompt"] == f"task: sentiment\ninput: {row['input']}\nanswer:"
    ops, splits = prepared.stats["ops"], prepared.stats["splits"]
    assert [o["op"] for o in ops] == ["dedup", "length_filter", "label_noise_filter"]
    assert ops[0]["before"] == splits["pool"] == 2000 - 200 - splits["leaked_rows_dropped"]
    assert all(o["after"] <= o["before"] for o in ops)
    assert prepared.stats["train"] == ops[-1]["after"] == len(prepared.train)
    assert prepared.stats["labels"] == ["negative", "neutral", "positive"]
    assert prepared.path == tmp_path / "data" / prepared.hash and (prepared.path / "stats.json").is_file()
    assert not set(prepared.train["input"]) & set(prepared.val["input"])


def test_every_recipe_is_validated_on_the_same_rows_none_trained_on(tmp_path: Path) -> None:
    """Validation rows are cut before any op: every recipe of a run sees the same ones, untouched by its
    ops (a noise filter cannot clean its own validation set), and no recipe trains on them."""
    task = builtin_task("sentiment")
    recipes = [DataRecipe(), RECIPE, DataRecipe(ops=[DataOp(op="label_noise_filter")]),
               DataRecipe(ops=[DataOp(op="subsample", params={"n": 300})], template="qa"),
               DataRecipe(ops=[DataOp(op="source_mix", params={"n": 3000})])]
    prepared = [prepare(r, task, tmp_path) for r in recipes]
    val_rows = {tuple(zip(p.val["input"], p.val["target"], strict=True)) for p in prepared}
    assert len(val_rows) == 1 and len(next(iter(val_rows))) == 200
    first = prepared[0]
    held = {normalize(x) for x in first.val["input"]} | {normalize(x) for x in first.eval["input"]}
    for p in prepared:
        assert not held & {normalize(x) for x in p.train["input"]}, p.stats["ops"]
        assert list(p.eval["input"]) == list(prepared[0].eval["input"])


def test_prepare_cache_hit(tmp_path: Path) -> None:
    task = builtin_task("headline")
    first = prepare(RECIPE, task, tmp_path)
    start = time.monotonic()
    second = prepare(RECIPE, task, tmp_path)
    assert second.stats["cached"] is True and first.stats["cached"] is False
    assert time.monotonic() - start < 1.0
    assert second.hash == first.hash and list(second.train["prompt"]) == list(first.train["prompt"])
    assert prepare(RECIPE, task, tmp_path, seed=1).hash != first.hash
    plain = RECIPE.model_copy(update={"template": "plain"})
    assert prepare(plain, task, tmp_path).train[0]["prompt"].endswith("\n=>")
    assert len(list((tmp_path / "data").iterdir())) == 3  # no temp dirs left behind


def test_prepare_errors(tmp_path: Path) -> None:
    task = builtin_task("reverse")
    with pytest.raises(DataError, match="'shuffle_words' is unknown; use one of"):
        prepare(DataRecipe(ops=[DataOp(op="shuffle_words")]), task, tmp_path)
    with pytest.raises(DataError, match="template 'chat': the model's tokenizer has no chat template"):
        prepare(DataRecipe(template="chat"), task, tmp_path)
    with pytest.raises(DataError, match="removed every train example"):
        prepare(DataRecipe(ops=[DataOp(op="length_filter", params={"max_words": 1})]), task, tmp_path)


def test_prepare_local_source(tmp_path: Path, local_jsonl: Path) -> None:
    base = builtin_task("sentiment")
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"text": "a test row", "label": 0}) + "\n")
    data = DataSpec(train=[local_source(local_jsonl)], eval=local_source(test_file), val_size=1)
    task = base.model_copy(update={"data": data})
    prepared = prepare(DataRecipe(ops=[DataOp(op="dedup")], template="qa"), task, tmp_path)
    assert len(prepared.val) == 1 and len(prepared.train) in (3, 4)  # dedup: hello world twice
    assert prepared.eval[0]["prompt"] == "question: a test row\nanswer:"


def test_one_data_file_gets_a_seeded_test_split(tmp_path: Path, local_jsonl: Path) -> None:
    base = builtin_task("sentiment")
    data = DataSpec(train=[local_source(local_jsonl)], test_size=1, val_size=1)
    task = base.model_copy(update={"data": data})
    first, again = prepare(DataRecipe(), task, tmp_path), prepare(DataRecipe(template="qa"), task, tmp_path)
    assert len(first.eval) == 1 and len(first.val) == 1
    assert len(first.train) == 3 - first.stats["splits"]["leaked_rows_dropped"]  # "hello world" twice
    assert list(first.eval["input"]) == list(again.eval["input"])
    assert not set(first.eval["input"]) & set(first.train["input"])


# --- profile ---------------------------------------------------------------------------------
def test_profile_label_task() -> None:
    prof = profile(builtin_task("sentiment"))
    assert prof["train_examples"] == 2000 and prof["targets_are_labels"] is True
    assert 0.02 <= prof["duplicate_fraction"] <= 0.05
    assert set(prof["label_distribution"]) == {"positive", "negative", "neutral"}
    assert 0.05 < prof["noise_estimate"] < 0.35
    assert prof["input_words"]["max"] > 48 >= prof["input_words"]["p95"]


def test_profile_text_task() -> None:
    prof = profile(builtin_task("headline"))
    assert prof["targets_are_labels"] is False and "label_distribution" not in prof
    assert prof["target_words"]["p50"] == 5
    assert 0.05 < prof["noise_estimate"] < 0.2


@pytest.mark.parametrize("name", ["sentiment", "reverse", "headline"])
def test_profile_suggested_max_words_separates_outliers(name: str) -> None:
    recs = generate(name, "train", with_meta=True)
    sizes = [(len(r["input"].split()) + len(r["target"].split()), r["long"]) for r in recs]
    bound = profile(builtin_task(name))["suggested_max_words"]
    assert max(n for n, long in sizes if not long) <= bound < min(n for n, long in sizes if long)


def test_noise_filter_never_wipes_out_multilabel_data():
    from trex_ray.execute.noise import noise_flags

    inputs = [f"tumor growth signal {i}" for i in range(100)]
    targets = ["sustaining proliferative signaling, evading growth suppressors" if i % 2 else "none"
               for i in range(100)]
    flags = noise_flags(inputs, targets, {"max_drop": 0.3})
    assert sum(flags) <= 30
