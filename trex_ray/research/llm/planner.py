"""LLMPlanner: the TREX Researcher as an LLM, with the heuristic planner as its safety net.

Stages, each recorded in the run's ``llm_calls.jsonl`` (kept with the run: its folder or bucket):

* **research** (once per run, kept in ``<run>/llm_research.json`` beside the journal, so that a resume
  on another machine does not redo it): the LLM proposes search
  queries; the search tools (local notes, local data catalog, arXiv / HF Hub when online) return
  findings, which later prompts quote and plans cite;
* **strategy** (``propose``): child plans through a function call, validated (``validate.py``);
  a bad answer is repaired with the reason fed back, or rejected;
* **reflection** (``reflect``): a one-sentence insight per result, kept in the tree's insight
  memory that later prompts reuse within ``memory_tokens``.

Whenever the LLM cannot help (unreachable, budget spent, no valid answer), that step falls back
to ``HeuristicPlanner`` and says so in the plans' rationale and the call log. Example::

    planner = LLMPlanner(task, run_location)     # a run folder or bucket URI; model in task.search.llm
    plans = planner.propose(tree, node, k=2)     # never raises for an LLM problem
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from trex_ray.research.heuristic import HeuristicPlanner
from trex_ray.research.insights import distill
from trex_ray.research.llm.client import LLMClient, LLMUnavailable, Rejected
from trex_ray.research.llm.prompts import queries_messages, reflect_messages, strategy_messages
from trex_ray.research.llm.schemas import insight_tool, plans_tool, queries_tool
from trex_ray.research.llm.tools import Finding, SearchTool, build_tools, search_all
from trex_ray.research.llm.validate import PlanCheck, check_insight, check_queries, op_summaries
from trex_ray.research.planner import register_planner
from trex_ray.spec import Plan, TaskSpec
from trex_ray.store.records import read_doc, write_doc
from trex_ray.tree import Node, SearchTree

log = logging.getLogger(__name__)

RESEARCH_FILE = "llm_research.json"
FALLBACK_TAG = "[heuristic fallback]"


class LLMPlanner:
    name = "llm"

    def __init__(
        self,
        task: TaskSpec,
        run_dir: str | Path | None = None,
        client: LLMClient | None = None,
        tools: list[SearchTool] | None = None,
    ) -> None:
        spec = task.search.llm
        if spec is None or spec.model is None:
            raise ValueError("search.llm.model: the llm planner needs a model (provider/name)")
        self.task, self.spec, self.run_dir = task, spec, run_dir
        self.client = client or LLMClient(spec, run_dir)
        self.tools = tools if tools is not None else build_tools(spec.search_tools, spec.notes_dir)
        self.heuristic = HeuristicPlanner(task)
        self.findings: list[Finding] | None = None

    # --- strategy -------------------------------------------------------------------------------
    def propose(self, tree: SearchTree, node: Node, k: int) -> list[Plan]:
        reason = self.client.disabled
        if reason is None:
            try:
                self._research(tree)
                return self._strategy(tree, node, k)
            except (LLMUnavailable, Rejected) as exc:
                reason = str(exc)
            except Exception as exc:  # noqa: BLE001 - a planner bug must not end the run
                reason = f"unexpected {type(exc).__name__}: {exc}"
                log.warning(
                    "LLM planner error (heuristic takes this step): %s", self.client.scrub.text(reason)
                )
        return self._fallback(tree, node, k, reason)

    def _strategy(self, tree: SearchTree, node: Node, k: int) -> list[Plan]:
        ops = op_summaries()
        messages = strategy_messages(
            self.task, tree, node, k, self.findings or [], ops, self.spec.memory_tokens
        )
        check = PlanCheck(self.task, tree, node, k, {f.id for f in self.findings or []})
        plans: list[Plan] = self.client.ask(
            "strategy", messages, plans_tool(k, list(ops)), check, node=node.id
        )
        return [p.model_copy(update={"rationale": self.client.scrub.text(p.rationale)}) for p in plans]

    def _fallback(self, tree: SearchTree, node: Node, k: int, reason: str) -> list[Plan]:
        plans = self.heuristic.propose(tree, node, k)
        self.client.note(
            "fallback", stage="strategy", node=node.id, reason=reason, plans=[p.hash for p in plans]
        )
        return [p.model_copy(update={"rationale": f"{FALLBACK_TAG} {p.rationale}"}) for p in plans]

    # --- literature and data research -------------------------------------------------------------
    def _research(self, tree: SearchTree) -> None:
        if self.findings is not None:
            return
        if not self.tools:
            self.findings = []
            return
        saved = read_doc(self.run_dir, RESEARCH_FILE) if self.run_dir is not None else None
        if isinstance(saved, dict):  # done before this resume (here or on another machine)
            data = saved
            self.findings = [Finding(**f) for f in data.get("findings", [])]
            return
        profile = tree.meta.get("profile") or {}
        try:
            queries = self.client.ask(
                "research", queries_messages(self.task, profile), queries_tool(), check_queries
            )
        except Rejected as exc:
            queries = self._default_queries()
            self.client.note("fallback", stage="research", reason=str(exc), queries=queries)
        findings, searches = search_all(self.tools, queries)
        for record in searches:
            self.client.note("search", stage="research", **record)
        self.findings = [Finding(**self.client.scrub.data(f.to_json())) for f in findings]
        if self.run_dir is not None:
            self._save(queries)

    def _default_queries(self) -> list[str]:
        words = (self.task.description or self.task.name).rstrip(".")
        return [
            f"fine-tuning small language model {words}"[:120],
            f"{self.task.metric.name.value} {words}"[:120],
        ]

    def _save(self, queries: list[str]) -> None:
        assert self.run_dir is not None
        body = {"queries": queries, "findings": [f.to_json() for f in self.findings or []]}
        write_doc(self.run_dir, RESEARCH_FILE, self.client.scrub.data(body))

    # --- insight distillation ---------------------------------------------------------------------
    def reflect(self, tree: SearchTree, node: Node) -> tuple[str, dict[str, Any]] | None:
        text, facts = distill(tree, node)  # the facts the heuristic fallback reads stay the same
        if self.client.disabled is not None:
            return None
        try:
            messages = reflect_messages(self.task, tree, node, text, self.spec.memory_tokens)
            insight, tags = self.client.ask(
                "reflection", messages, insight_tool(), check_insight, node=node.id
            )
        except (LLMUnavailable, Rejected) as exc:
            self.client.note("fallback", stage="reflection", node=node.id, reason=str(exc))
            return None
        except Exception as exc:  # noqa: BLE001 - a planner bug must not end the run
            log.warning("LLM reflection error (built-in insight used): %s", self.client.scrub.text(str(exc)))
            return None
        return self.client.scrub.text(insight), {**facts, "source": "llm", "tags": tags, "mechanical": text}


@register_planner("llm")
def _make(task: TaskSpec, run_dir: str | Path | None = None) -> LLMPlanner:
    return LLMPlanner(task, run_dir)
