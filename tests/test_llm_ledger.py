"""The LLM ledger lives with the run: a resume on another machine (a fresh scratch folder) keeps the
token and dollar spend and does not redo the research stage — for a run folder and for a run in a
bucket (moto on 127.0.0.1). The LLM is a local OpenAI-compatible server, reached through litellm.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from factories import finished, make_task
from llm_server import LLMServer, PlanScript, requested_tool
from s3_local import LocalS3, fresh_location, local_s3

from trex_ray.research import Researcher
from trex_ray.store import Store
from trex_ray.store.records import RecordLog, read_doc


@pytest.fixture(scope="module")
def s3() -> Iterator[LocalS3]:
    with local_s3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_location(request, tmp_path)


def _task(url: str, notes: Path):
    return make_task([
        "search.planner=llm", "search.llm.model=openai/test", f"search.llm.api_base={url}",
        "search.llm.search_tools=[notes]", f"search.llm.notes_dir={notes}", "search.llm.max_retries=1",
        "search.llm.max_tokens=100000", "budget.max_nodes=4", "search.children_per_expansion=1",
    ])


def test_a_resume_on_another_machine_keeps_the_llm_spend_and_the_findings(location: str,
                                                                         tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lora.md").write_text("# LoRA\n\nFor small models a learning rate near 2e-3 works.\n")
    with LLMServer(default=PlanScript()) as srv:
        task = _task(srv.url, notes)
        first = Researcher.open(tmp_path / "machine-a", task, profile={}, store=Store(location))
        assert [n.id for n in first.next_nodes(2)] == ["n0", "n1"]  # research, then a plan
        first.on_result("n0", finished(0.3))
        first.on_result("n1", finished(0.6))  # a reflection
        spend = first.planner.client.spend  # type: ignore[attr-defined]
        assert spend.tokens == 3 * 150
        asked = len(srv.requests)
        assert [requested_tool(r["body"]) for r in srv.requests] == [
            "search_literature", "propose_plans", "record_insight"]

        # another machine: an empty scratch folder, a new planner; the run's location is all it shares
        second = Researcher.open(tmp_path / "machine-b", task, profile={}, store=Store(location))
        again = second.planner.client.spend  # type: ignore[attr-defined]
        assert (again.tokens, again.dollars) == (spend.tokens, spend.dollars)
        assert [n.id for n in second.next_nodes(1)] == ["n2"]
        assert [requested_tool(r["body"]) for r in srv.requests[asked:]] == ["propose_plans"]  # no research
        assert again.tokens == spend.tokens + 150
        assert "[cites: notes:lora.md#" in second.tree.get("n2").plan.rationale  # findings reloaded

    records = RecordLog(location, "llm_calls.jsonl").read()
    assert [r["seq"] for r in records] == list(range(len(records)))
    assert sum(r["kind"] == "call" for r in records) == 4
    assert read_doc(location, "llm_research.json")["findings"]
    scratch = [p.name for machine in ("machine-a", "machine-b") for p in (tmp_path / machine).rglob("*")]
    assert not [name for name in scratch if name.startswith("llm_")], scratch  # nothing only on a machine
