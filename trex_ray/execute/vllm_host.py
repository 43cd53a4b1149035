"""The process that holds one vLLM engine: ``python -m trex_ray.execute.vllm_host FD``.

``EngineHost`` (``vllm_backend.py``) starts it with one end of a socket pair as ``FD`` and talks
to it in pickled messages. The host imports vLLM at once (so a spare host is warm), then waits:

* ``("start", engine_kwargs, env)`` → builds ``vllm.LLM`` in this process (V1 engine in-process,
  uni executor: one process per engine) → ``("ready", {"start_s", "import_s", "device"})``
  or ``("error", message)``;
* ``("generate", jobs, sampling)`` with jobs ``[(prompts, max_new_tokens, lora or None[, allowed])]``,
  lora ``(name, int_id, path)``, allowed a list of the token ids the answer may take (or None)
  → one ``LLM.generate`` over every job's prompts (each prompt with its
  job's adapter and length; greedy unless ``sampling``, extra ``SamplingParams`` fields, says
  otherwise) → ``("ok", [[text, ...], ...])`` or ``("error", message)``;
* ``("close",)`` or the parent gone (EOF) → exit.

An engine is never shut down inside a process that keeps another: vLLM's in-process teardown
destroys process-global state. Ending the process frees everything, so every engine gets its own.
Only the standard library is imported at the top: the host must start fast and never import Ray.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger("trex_ray.execute.vllm_host")

IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1][:300]}" if text else type(exc).__name__


def _import_vllm() -> float:
    t0 = time.perf_counter()
    import vllm  # noqa: F401 - warm the import before the engine is asked for

    return time.perf_counter() - t0


def _start(kwargs: dict[str, Any], env: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    os.environ.update(env)
    from vllm import LLM
    from vllm.platforms import current_platform

    if current_platform.is_cpu() and kwargs.get("enable_lora"):
        from trex_ray.execute.vllm_cpu_lora import install

        logger.info("vllm host: grouped CPU LoRA ops %s", "installed" if install() else "not installed")

    t0 = time.perf_counter()
    llm = LLM(**kwargs)
    return llm, {"start_s": time.perf_counter() - t0, "device": current_platform.device_type}


def _generate(llm: Any, jobs: list[tuple[Any, ...]],
              sampling: dict[str, Any] | None = None) -> list[list[str]]:
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest

    prompts: list[str] = []
    params: list[Any] = []
    loras: list[Any] = []
    # vLLM detokenizes every sequence at every step; without stop strings the text is only needed at
    # the end, so the whole batch is decoded once (as HF's batch_decode does: the same text).
    at_end = not (sampling or {}).get("stop")
    for job in jobs:
        job_prompts, max_new_tokens, lora = job[:3]
        allowed = {"allowed_token_ids": list(job[3])} if len(job) > 3 and job[3] else {}
        sp = SamplingParams(**{"temperature": 0.0, "detokenize": not at_end, **(sampling or {}),
                               "max_tokens": max_new_tokens, **allowed})
        request = LoRARequest(lora[0], lora[1], lora[2]) if lora else None
        prompts += job_prompts
        params += [sp] * len(job_prompts)
        loras += [request] * len(job_prompts)
    outs = llm.generate(prompts, params, lora_request=loras, use_tqdm=False) if prompts else []
    if at_end and outs:
        ids = [list(o.outputs[0].token_ids) for o in outs]
        texts = [t.strip() for t in llm.get_tokenizer().batch_decode(ids, skip_special_tokens=True)]
    else:
        texts = [o.outputs[0].text.strip() for o in outs]
    result, i = [], 0
    for job in jobs:
        result.append(texts[i:i + len(job[0])])
        i += len(job[0])
    return result


def serve(conn: Connection) -> None:
    """Answer messages until told to close or the parent goes away."""
    try:
        import_s, import_error = _import_vllm(), None
    except Exception as exc:  # noqa: BLE001 - reported on start: the parent falls back
        import_s, import_error = 0.0, one_line(exc)
    llm = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] == "close":
            return
        try:
            if msg[0] == "start":
                if import_error:
                    raise ImportError(f"vllm cannot be imported here ({import_error})")
                llm, info = _start(msg[1], msg[2])
                conn.send(("ready", {**info, "import_s": import_s}))
            elif msg[0] == "generate":
                if llm is None:
                    raise RuntimeError("no engine: send start first")
                conn.send(("ok", _generate(llm, msg[1], msg[2] if len(msg) > 2 else None)))
            else:
                raise ValueError(f"unknown message {msg[0]!r}")
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as one line
            logger.warning("vllm host: %s failed", msg[0], exc_info=True)
            conn.send(("error", one_line(exc)))


def _cpu_build() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return bool(version("vllm-cpu"))
    except PackageNotFoundError:
        return False


def _parse_cpus(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus += list(range(int(low), int(high or low) + 1))
    return cpus


def bind_cpu_threads() -> list[int]:
    """What vLLM's multiprocess executor does for its CPU worker, done here for the in-process engine
    (vLLM skips it then, and unbound OpenMP threads on a busy machine run many times slower): the
    engine's OpenMP threads on the allowed cores less ``VLLM_CPU_NUM_OF_RESERVED_CPU`` (default one,
    for the rest of the node), or on ``VLLM_CPU_OMP_THREADS_BIND`` ("0-3"; "nobind" leaves all as is).
    Must run before torch is imported. Returns the cores used ([] when not bound)."""
    mask = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "auto")
    if mask == "nobind" or not hasattr(os, "sched_setaffinity") or not _cpu_build():
        return []
    allowed = sorted(os.sched_getaffinity(0))
    if mask == "auto":
        reserve = int(os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU") or (1 if len(allowed) > 1 else 0))
        cpus = allowed[:max(1, len(allowed) - reserve)]
    else:
        cpus = _parse_cpus(mask.split("|")[0])
    os.sched_setaffinity(0, cpus)
    listed = ",".join(map(str, cpus))
    os.environ.update({"OMP_NUM_THREADS": str(len(cpus)), "OMP_PLACES": f"{{{listed}}}",
                       "OMP_PROC_BIND": "true"})
    return cpus


def _die_with_parent() -> None:
    """End this host when the process that started it is gone, even mid-import or mid-start
    (a parent killed with SIGKILL sends no message; its socket only closes)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(2.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    conn = Connection(int(argv[1]))
    os.environ.update(IN_PROCESS_ENV)
    _die_with_parent()
    cpus = bind_cpu_threads()
    logger.info("vllm host %d: OpenMP threads on cores %s", os.getpid(), cpus or "as inherited")
    try:
        serve(conn)
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)  # vLLM's atexit teardown can take seconds and has nothing left to save


if __name__ == "__main__":
    sys.exit(main(sys.argv))
