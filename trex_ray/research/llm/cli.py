"""Command-line glue of the LLM Researcher: ``trex draft`` and the LLM options of ``trex run``.

trex draft "label reviews as positive or negative" --data reviews.jsonl \
        --model openai/gpt-4o-mini --out task.yaml
trex run task.yaml --planner llm --model openai/gpt-4o-mini --notes papers/
trex run sentiment --model openai/my-model --api-base http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from trex_ray.research.llm.draft import DEFAULT_BASE_MODEL, Profiler, draft_task
from trex_ray.spec import SpecError, validate
from trex_ray.spec.task import LLMSpec


def add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--model",
        help="LLM planner model as provider/name, e.g. openai/gpt-4o-mini (implies "
        "--planner llm; keys come from the environment, e.g. OPENAI_API_KEY)",
    )
    run.add_argument("--api-base", help="LLM endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama, a proxy)")
    run.add_argument("--notes", help="a folder of papers/notes (.md .txt .rst .tex) the LLM planner searches")


def llm_overrides(args: argparse.Namespace) -> list[str]:
    """Task overrides for ``--model``, ``--api-base`` and ``--notes``."""
    out = []
    if getattr(args, "model", None):
        out.append(f"search.llm.model={json.dumps(args.model)}")
        if not args.planner:
            out.append("search.planner=llm")
    if getattr(args, "api_base", None):
        out.append(f"search.llm.api_base={json.dumps(args.api_base)}")
    if getattr(args, "notes", None):
        notes = Path(args.notes).expanduser().absolute()  # the Researcher may run in another directory
        if not notes.is_dir():
            raise SpecError(f"--notes {args.notes}: not a folder; give a folder of .md/.txt/.rst/.tex notes")
        out.append(f"search.llm.notes_dir={json.dumps(str(notes))}")
    return out


def add_draft_command(sub: Any, profiler: Profiler | None = None) -> None:
    """``trex draft``; ``profiler`` is the executor's data profile (the ``trex`` entry passes it)."""
    p = sub.add_parser("draft", help="draft a task YAML from a request and your data (LLM or heuristic)")
    p.add_argument("request", help='what the model must do, e.g. "label reviews as positive or negative"')
    p.add_argument(
        "--data", required=True, help="training data: a .jsonl/.json/.parquet file or builtin:<task>"
    )
    p.add_argument("--eval", dest="eval_data", help="held-out evaluation data (default: the training file)")
    p.add_argument("--model", help="LLM as provider/name, e.g. openai/gpt-4o-mini (default: no LLM)")
    p.add_argument("--api-base", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    p.add_argument(
        "--base-model", default=DEFAULT_BASE_MODEL, help="model to fine-tune (default: %(default)s)"
    )
    p.add_argument("--out", help="write the YAML here (default: print it)")
    p.add_argument("--log-dir", help="where llm_calls.jsonl goes (default: runs/draft-<time>)")
    p.set_defaults(func=cmd_draft, profiler=profiler)


def cmd_draft(args: argparse.Namespace) -> int:
    spec = None
    if args.model or args.api_base:
        spec = validate(LLMSpec, {"model": args.model, "api_base": args.api_base}, where="--model/--api-base")
        if spec.model is None:
            raise SpecError("--api-base needs --model provider/name (e.g. openai/my-model)")
    log_dir = Path(args.log_dir or f"runs/draft-{time.strftime('%Y%m%d-%H%M%S')}") if spec else None
    draft = draft_task(args.request, args.data, args.eval_data, spec, log_dir, args.base_model,
                       profiler=getattr(args, "profiler", None))
    if args.out:
        Path(args.out).write_text(draft.yaml, encoding="utf-8")
        print(f"task draft ({draft.by}) written to {args.out}; review it, then: trex run {args.out}")
    else:
        print(draft.yaml)
    for note in draft.notes:
        print(f"trex draft: {note}", file=sys.stderr)
    if log_dir is not None:
        print(f"trex draft: LLM calls recorded in {log_dir / 'llm_calls.jsonl'}", file=sys.stderr)
    return 0
