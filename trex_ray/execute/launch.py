"""Where the training loop runs: a worker's setup (DeepSpeed's op cache, seeds, the process group)
and ``InProcessLauncher``, which runs the loop here as a world of one.

Example::

    result = InProcessLauncher().launch(train_loop, config)   # execute/train.py's loop, here
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

Loop = Callable[[dict[str, Any]], dict[str, Any]]


def ensure_torch_extensions_dir() -> str:
    """Where DeepSpeed caches its compiled ops: ``TORCH_EXTENSIONS_DIR``, else ``<repo>/.cache``.

    Also puts this interpreter's ``bin`` first on ``PATH`` when it holds a ``ninja`` (the one pip
    installed beside DeepSpeed), so that every process builds ops with the same ninja: two ninja
    versions (e.g. the system's 1.11 and pip's 1.13) log the same build command under different
    hashes, so a process on the other one recompiles the cached op (30-50 s on 2 cores) each time.
    """
    if not os.environ.get("TORCH_EXTENSIONS_DIR"):
        repo = Path(__file__).resolve().parents[2]
        root = repo / ".cache" if (repo / "pyproject.toml").is_file() else Path.home() / ".cache" / "trex_ray"
        os.environ["TORCH_EXTENSIONS_DIR"] = str(root / "torch_extensions")
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if (Path(bin_dir) / "ninja").is_file() and path[:1] != [bin_dir]:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *(p for p in path if p != bin_dir)])
    return os.environ["TORCH_EXTENSIONS_DIR"]


# --- a worker's setup --------------------------------------------------------------------------
def seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed)


MMAP_THRESHOLD = 256 << 10  # bytes: blocks from here up are mapped on their own, and unmapped when freed


def return_freed_memory() -> bool:
    """Have glibc's malloc give freed tensors back to the system (``mallopt(M_MMAP_THRESHOLD)``).

    By default glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed, after
    which a step's activations, gathered ZeRO-3 parameters and gradients come from its heaps and stay
    there when freed: a 2-worker CPU trial of SmolLM2-135M then holds 1-1.5 GiB more resident than it
    uses (``benchmarks/zero3_memory.py`` reports both). A fixed threshold keeps every block of 256 KiB
    or more in a mapping of its own. False where the C library has no ``mallopt`` (not glibc)."""
    import ctypes

    try:
        return bool(ctypes.CDLL(None).mallopt(-3, MMAP_THRESHOLD))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def skip_inference_comm_op() -> None:
    """Keep DeepSpeed from compiling its shared-memory all-reduce op, which training never uses.

    On CPU, DeepSpeed 0.19's ``TorchBackend`` builds ``deepspeed_shm_comm`` (a C++ JIT compile: about
    50 s of both cores on a fresh 2-core machine, before the first trial's first step) at every process
    group's start, for ``inference_all_reduce`` alone: tensor-parallel inference. Training's collectives
    go through ``torch.distributed``. Marking the op incompatible makes ``build_shm_op`` return None."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


def init_distributed() -> tuple[int, int]:
    import deepspeed

    ensure_torch_extensions_dir()
    skip_inference_comm_op()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():  # this worker's GPU among those its machine's workers see
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    deepspeed.init_distributed(dist_backend=backend, verbose=False)
    if backend == "gloo":
        gather_and_scatter_in_place()
    return dist.get_rank(), dist.get_world_size()


def _all_gather_in_place(output_tensor: torch.Tensor, input_tensor: torch.Tensor, group: Any = None,
                         async_op: bool = False) -> Any:
    n = input_tensor.numel()
    out = output_tensor.view(-1)
    out.zero_()
    out.narrow(0, dist.get_rank(group) * n, n).copy_(input_tensor.view(-1))
    return dist.all_reduce(output_tensor, group=group, async_op=async_op)  # x + 0 is x: exact


def _reduce_scatter_in_place(output_tensor: torch.Tensor, input_tensor: torch.Tensor, op: Any = None,
                             group: Any = None, async_op: bool = False) -> Any:
    dist.all_reduce(input_tensor, op=op if op is not None else dist.ReduceOp.SUM, group=group)
    n = output_tensor.numel()
    mine = input_tensor.view(-1).narrow(0, dist.get_rank(group) * n, n)
    if mine.data_ptr() != output_tensor.data_ptr():  # DeepSpeed's ZeRO-3 scatters into its own input
        output_tensor.view(-1).copy_(mine)
    return _Done() if async_op else None


class _Done:
    """The handle of a collective that has completed already."""

    def wait(self, timeout: Any = None) -> bool:
        return True


def gather_and_scatter_in_place() -> None:
    """Let DeepSpeed's all-gathers and reduce-scatters on gloo (CPU) run as in-place all-reduces.

    gloo's ``all_gather_into_tensor`` copies the whole gathered tensor once more, and its
    ``reduce_scatter_tensor`` takes 1.5 times its input besides (measured: 218 / 162 MiB of peak for a
    108 MiB tensor, where ``all_reduce`` takes 2 MiB). Under ZeRO-3 that lands on every gathered
    parameter and every reduced gradient: SmolLM2's 108 MiB embedding is gathered and reduced each step.
    An all-reduce of the zero-padded partition gathers it (x + 0 is exact), an all-reduce of the
    gradient and a slice scatters it (the input is DeepSpeed's scratch buffer; it keeps no use of it),
    at twice the bytes sent: a CPU worker is short of memory long before its loopback is short of
    bandwidth. ZeRO-0 all-reduces already and is not changed."""
    from deepspeed.comm import comm as ds_comm

    backend = ds_comm.cdb
    if backend is None or not hasattr(backend, "all_gather_function"):
        return
    backend.all_gather_function = _all_gather_in_place
    backend.reduce_scatter_function = _reduce_scatter_in_place


# --- launching here ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _patched_env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_PORT: list[int] = []


def _world_of_one() -> dict[str, str]:
    """The env of rank 0 in a world of one (DeepSpeed reads it), on a port chosen once per process."""
    if not _PORT or not dist.is_initialized():
        _PORT[:] = [free_port()]
    return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_PORT[0]), "RANK": "0", "WORLD_SIZE": "1",
            "LOCAL_RANK": "0"}


class InProcessLauncher:
    """Runs the loop here as a world of one (gloo on a free localhost port): the ``TrainLauncher``
    for tests, notebooks and single-process runs.

    The process group is made on first use and kept for later launches in this process: DeepSpeed
    caches its groups, so a torn-down and re-made group breaks its next ``initialize``. Call
    ``shutdown()`` to tear it down when no more training will run here.
    """

    name = "inprocess"

    def __init__(self, num_threads: int | None = None) -> None:
        self.num_threads = num_threads  # None: the config's (run_plan sets it from cpus_per_worker)

    def launch(self, loop: Loop, config: dict[str, Any]) -> dict[str, Any]:
        saved_threads = torch.get_num_threads()
        threads = {"num_threads": self.num_threads} if self.num_threads else {}
        try:
            with _patched_env(_world_of_one()):
                if not dist.is_initialized():
                    dist.init_process_group("gloo", rank=0, world_size=1)
                return loop({**config, **threads})
        finally:
            torch.set_num_threads(saved_threads)

    @staticmethod
    def shutdown() -> None:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
