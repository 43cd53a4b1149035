"""Memory settings (resources.*) train the same model: gradient accumulation (k micro-batches = one batch
k times larger), gradient checkpointing, a ZeRO stage from the task, optimizer offload. In this process,
DeepSpeed on CPU (gloo), the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import make_task

from trex_ray.execute.context import RunContext
from trex_ray.execute.engine import ds_config
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.run_plan import run_plan
from trex_ray.ftbench.registry import builtin_task
from trex_ray.spec import DataOp, DataRecipe, Plan, Result, SpecError, TaskSpec, TrainRecipe

# Answers of 3 to 51 words: micro-batches hold different numbers of scored tokens, so a plain mean of
# their mean losses would not be one batch's loss (checked: such a step fails this test).
BASE = builtin_task("reverse")
PLAN = Plan(data=DataRecipe(ops=[DataOp(op="subsample", params={"n": 96})]),
            train=TrainRecipe(mode="full", learning_rate=2e-3, epochs=1, batch_size=8, zero_stage=1))
TOLERANCE = 1e-4  # relative, on losses: fp32 sums in another order


def _task(**resources: object) -> TaskSpec:
    return BASE.model_copy(update={"resources": BASE.resources.model_validate(
        {**BASE.resources.model_dump(), **resources})})


def _train(task: TaskSpec, cache: Path, work: Path) -> Result:
    ctx = RunContext(task=task, node_id=work.name, work_dir=work, cache_dir=cache,
                     launcher=InProcessLauncher())
    result = run_plan(PLAN, ctx)
    assert result.ok, result.error
    return result


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def plain(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Result:
    return _train(BASE, cache, tmp_path_factory.mktemp("plain"))


def _same_curve(a: Result, b: Result) -> None:
    assert a.cost.train_steps == b.cost.train_steps == 12 and a.cost.train_tokens == b.cost.train_tokens
    assert [p.step for p in a.curve] == [p.step for p in b.curve]
    for p, q in zip(a.curve, b.curve, strict=True):
        assert q.train_loss == pytest.approx(p.train_loss, rel=TOLERANCE)
        assert q.val_loss == pytest.approx(p.val_loss, rel=TOLERANCE)


def test_k_micro_batches_train_as_one_batch_k_times_larger(plain: Result, cache: Path,
                                                           tmp_path: Path) -> None:
    accumulated = _train(_task(gradient_accumulation_steps=4), cache, tmp_path / "acc")
    _same_curve(plain, accumulated)
    assert plain.curve[-1].val_loss < plain.curve[0].val_loss  # it learned: the curves compared move


def test_zero3_accumulates_micro_batches_as_one_batch(plain: Result, cache: Path, tmp_path: Path) -> None:
    """The loop calls the decoder itself, not engine.forward, where ZeRO-3 counts micro-batches: without
    that count each micro-batch's gradient replaced the one before (step 3's loss 10.9 against 9.8)."""
    _same_curve(plain, _train(_task(zero_stage=3, gradient_accumulation_steps=4), cache, tmp_path / "z3acc"))


def test_gradient_checkpointing_gives_the_same_losses(plain: Result, cache: Path, tmp_path: Path) -> None:
    _same_curve(plain, _train(_task(gradient_checkpointing=True), cache, tmp_path / "ckpt"))


def test_the_task_sets_the_zero_stage_and_offloads_the_optimizer(plain: Result, cache: Path,
                                                                 tmp_path: Path) -> None:
    _same_curve(plain, _train(_task(zero_stage=2, offload="optimizer"), cache, tmp_path / "offload"))


def test_ds_config_carries_the_memory_settings() -> None:
    config = ds_config(PLAN.train, 2, accumulation=4, stage=3, offload="all")
    assert config["gradient_accumulation_steps"] == 4 and config["train_micro_batch_size_per_gpu"] == 2
    assert config["zero_optimization"] == {"stage": 3, "offload_optimizer": {"device": "cpu"},
                                           "offload_param": {"device": "cpu"}}
    assert ds_config(PLAN.train, 8)["zero_optimization"] == {"stage": 1}  # the plan's own, nothing offloaded
    sized = ds_config(PLAN.train, 8, stage=3, hidden_size=64)["zero_optimization"]  # as HF's Trainer
    assert sized["reduce_bucket_size"] == 4096 and sized["stage3_param_persistence_threshold"] == 640
    assert sized["sub_group_size"] == 4096  # the optimizer steps a layer's worth at a time, not the partition


@pytest.mark.parametrize(("overrides", "message"), [
    (["resources.offload=optimizer"], "resources.offload: optimizer offload needs ZeRO stage 1 or more; "
                                      "set resources.zero_stage=2"),
    (["resources.offload=all", "resources.zero_stage=2"], "set resources.zero_stage=3"),
    (["resources.gradient_accumulation_steps=0"], "resources.gradient_accumulation_steps"),
])
def test_bad_memory_settings_name_the_field_and_the_fix(overrides: list[str], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        make_task(overrides)


def test_zero3_partitions_at_load_and_trains_the_same(plain: Result, cache: Path, tmp_path: Path) -> None:
    """ZeRO-3 builds the model under deepspeed.zero.Init (partitioned as it loads); the losses are those
    of ZeRO-1, and the evaluation after it (in this process) loads its model whole again."""
    partitioned = _train(_task(zero_stage=3), cache, tmp_path / "z3")
    _same_curve(plain, partitioned)
    assert partitioned.metric == plain.metric


def test_partitioned_load_builds_partitioned_parameters_and_then_stops(cache: Path) -> None:
    from trex_ray.execute.engine import partitioned_load
    from trex_ray.execute.launch import InProcessLauncher
    from trex_ray.execute.models import _causal_lm, materialize_base_model

    base = materialize_base_model(BASE.model, cache)

    def loop(config: dict) -> dict:  # type: ignore[type-arg]
        with partitioned_load(ds_config(PLAN.train, 8, stage=3)):
            inside = _causal_lm(base)
        outside = _causal_lm(base)
        first = next(inside.parameters())
        return {"inside": hasattr(first, "ds_shape") and first.numel() == 0,
                "outside": hasattr(next(outside.parameters()), "ds_shape")}

    assert InProcessLauncher().launch(loop, {}) == {"inside": True, "outside": False}


def _gloo_worker(rank: int, port: int, out: str) -> None:
    """One of 2 gloo workers: DeepSpeed's gather and scatter (made in place) against gloo's own, and the
    peak each adds for a 64 MiB tensor."""
    import json
    import os

    import torch
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)})
    from deepspeed.comm import comm as ds_comm

    from trex_ray.execute.launch import init_distributed, return_freed_memory

    return_freed_memory()
    init_distributed()
    backend = ds_comm.cdb
    torch.manual_seed(rank)
    part, grad = torch.randn(1001), torch.randn(2002)
    gathered, expected = torch.empty(2002), torch.empty(2002)
    dist.all_gather_into_tensor(expected, part)
    backend.all_gather_function(gathered, part, async_op=True).wait()
    scattered, expected_part = torch.empty(1001), torch.empty(1001)
    dist.reduce_scatter_tensor(expected_part, grad.clone())
    backend.reduce_scatter_function(scattered, grad, op=dist.ReduceOp.SUM)

    def peak_added(collective: object, *tensors: torch.Tensor) -> float:
        for t in tensors:
            t.zero_()  # touched: only what the collective adds counts
        dist.barrier()
        Path("/proc/self/clear_refs").write_text("5")
        before = _vm("VmRSS")
        collective(*tensors)  # type: ignore[operator]
        return _vm("VmHWM") - before

    n = 16 << 20  # 64 MiB of fp32
    big_out, big_part, big_grad = torch.empty(n), torch.empty(n // 2), torch.empty(n)
    Path(out, f"{rank}.json").write_text(json.dumps({
        "gather_same": torch.equal(gathered, expected), "scatter_same": torch.equal(scattered, expected_part),
        "gather_mib": peak_added(backend.all_gather_function, big_out, big_part),
        "scatter_mib": peak_added(lambda o, g: backend.reduce_scatter_function(o, g), big_part, big_grad),
        "gloo_gather_mib": peak_added(dist.all_gather_into_tensor, big_out, big_part)}))
    dist.destroy_process_group()


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def test_gloo_gathers_and_scatters_in_place_with_gloos_results(tmp_path: Path) -> None:
    """On gloo, DeepSpeed's all-gather and reduce-scatter (ZeRO-3's every parameter and gradient) run as
    in-place all-reduces: the same values as gloo's own collectives, without gloo's copy of the tensor."""
    import json

    import torch.multiprocessing as mp

    from trex_ray.execute.launch import free_port

    mp.spawn(_gloo_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        r = json.loads((tmp_path / f"{rank}.json").read_text())
        assert r["gather_same"] and r["scatter_same"]
        assert r["gloo_gather_mib"] > 48  # gloo's own copies the 64 MiB once more: the probe sees it
        assert r["gather_mib"] < 16 and r["scatter_mib"] < 16, r


def test_tied_embedding_gradient_made_once_equals_autograds(cache: Path) -> None:
    """``TiedGradient``: the tied weight's gradient made in the lookup's backward from the output layer's
    factors is autograd's (two dense gradients summed), the padding row's included; not installed on an
    untied or frozen embedding."""
    import torch

    from trex_ray.execute.models import _causal_lm, materialize_base_model
    from trex_ray.execute.tied import TiedGradient

    base = materialize_base_model(BASE.model, cache)
    plain, tied = _causal_lm(base), _causal_lm(base)
    assert TiedGradient.install(tied) is not None
    pad = plain.get_input_embeddings().padding_idx
    assert pad is not None  # the padding row must get no gradient from the lookup
    ids = torch.randint(0, plain.config.vocab_size, (3, 17))
    ids[:, :3] = pad  # left padding: later positions attend to it, so its rows' gradient is not zero
    ids[:, 3:] = torch.where(ids[:, 3:] == pad, pad + 1, ids[:, 3:])
    for model in (plain, tied):
        body, head = model.get_decoder(), model.get_output_embeddings()
        hidden = body(input_ids=ids).last_hidden_state
        logits = head(hidden[:, :-1][ids[:, 1:] != pad])  # scored positions only, as the loop does
        torch.nn.functional.cross_entropy(logits, ids[:, 1:][ids[:, 1:] != pad]).backward()
    expected, got = plain.get_input_embeddings().weight.grad, tied.get_input_embeddings().weight.grad
    assert got.abs().sum() > 0 and torch.allclose(got, expected, rtol=1e-5, atol=1e-7)
    layer = [m.get_decoder().layers[0].mlp.up_proj.weight.grad for m in (plain, tied)]
    assert torch.allclose(layer[1], layer[0], rtol=1e-5, atol=1e-7)
    frozen = _causal_lm(base)
    frozen.get_input_embeddings().weight.requires_grad_(False)
    assert TiedGradient.install(frozen) is None
    untied = _causal_lm(base)
    untied.get_output_embeddings().weight = torch.nn.Parameter(untied.get_input_embeddings().weight.clone())
    assert TiedGradient.install(untied) is None
