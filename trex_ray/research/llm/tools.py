"""Search tools of the literature and data research stage; their findings are cited in plans.

A tool is ``name`` + ``search(query, k) -> list[Finding]``; it never raises (an unreachable
service is logged once and the tool goes quiet). Offline: ``NotesSearch`` (a folder of
papers/notes: .md .txt .rst .tex) and ``CatalogSearch`` (built-in tasks and data sets in the
local Hugging Face cache). Online: ``ArxivSearch`` and ``HubSearch``, skipped when
``HF_HUB_OFFLINE`` or ``TREX_OFFLINE`` is set. Example::

    tools = build_tools(("notes", "catalog"), notes_dir="papers/")
    findings = search_all(tools, ["LoRA learning rate small models"], per_query=3)
"""

from __future__ import annotations

import logging
import math
import os
import re
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from trex_ray.spec import builtin

log = logging.getLogger(__name__)

NOTE_SUFFIXES = (".md", ".txt", ".rst", ".tex")
MAX_NOTE_BYTES = 1_000_000
MAX_NOTE_FILES = 500
SNIPPET_CHARS = 300
ONLINE_TIMEOUT_S = 10.0
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by for from in is it of on or that the this to with what how".split()
)


@dataclass(frozen=True)
class Finding:
    id: str  # what a plan cites, e.g. "notes:lora.md#2" or "arxiv:2106.09685"
    title: str
    snippet: str
    source: str  # the tool
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SearchTool(Protocol):
    name: str

    def search(self, query: str, k: int) -> list[Finding]: ...


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."


class _Ranked:
    """Documents ranked by tf-idf overlap with a query (enough for notes and catalogs)."""

    def __init__(self, docs: list[tuple[Finding, str]]) -> None:
        self.docs = docs
        self.tf = [Counter(_terms(body)) for _, body in docs]
        df = Counter(t for tf in self.tf for t in tf)
        self.idf = {t: math.log(1 + len(docs) / n) for t, n in df.items()}

    def top(self, query: str, k: int) -> list[Finding]:
        terms = set(_terms(query))
        scored = []
        for i, tf in enumerate(self.tf):
            score = sum(self.idf[t] * (1 + math.log(tf[t])) for t in terms if t in tf)
            if score > 0:
                scored.append((score, -i, self.docs[i][0]))
        return [f for _, _, f in sorted(scored, reverse=True)[:k]]


class NotesSearch:
    """Paragraphs of a local folder of papers and notes."""

    name = "notes"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self._index: _Ranked | None = None

    def _load(self) -> _Ranked:
        docs: list[tuple[Finding, str]] = []
        files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in NOTE_SUFFIXES and p.is_file())
        for path in files[:MAX_NOTE_FILES]:
            if path.stat().st_size > MAX_NOTE_BYTES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            rel = path.relative_to(self.folder).as_posix()
            title = next((ln.strip("# ").strip() for ln in text.splitlines() if ln.strip()), rel)[:120]
            for j, para in enumerate(p for p in re.split(r"\n\s*\n", text) if p.strip()):
                docs.append(
                    (
                        Finding(id=f"notes:{rel}#{j}", title=title, snippet=_snippet(para), source=self.name),
                        f"{title} {para}",
                    )
                )
        return _Ranked(docs)

    def search(self, query: str, k: int) -> list[Finding]:
        if not self.folder.is_dir():
            return []
        if self._index is None:
            self._index = self._load()
        return self._index.top(query, k)


class CatalogSearch:
    """Data sets known offline: the built-in tasks and those in the local Hugging Face cache."""

    name = "catalog"

    def __init__(self) -> None:
        self._index: _Ranked | None = None

    def _load(self) -> _Ranked:
        docs = [
            (
                Finding(
                    id=f"builtin:{name}",
                    title=f"built-in task {name}",
                    snippet=_snippet(desc),
                    source=self.name,
                ),
                f"{name} {desc}",
            )
            for name, desc in builtin.task_catalogue()  # registered by ftbench (spec/builtin.py)
        ]
        for repo in _cached_hub_datasets():
            docs.append(
                (
                    Finding(
                        id=f"hf:{repo}",
                        title=f"cached dataset {repo}",
                        snippet="in the local HF cache",
                        source=self.name,
                    ),
                    repo.replace("/", " ").replace("-", " ").replace("_", " "),
                )
            )
        return _Ranked(docs)

    def search(self, query: str, k: int) -> list[Finding]:
        if self._index is None:
            self._index = self._load()
        return self._index.top(query, k)


def _cached_hub_datasets() -> list[str]:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub = Path(os.environ.get("HF_HUB_CACHE", home / "hub"))
    if not hub.is_dir():
        return []
    names = [p.name.removeprefix("datasets--").replace("--", "/") for p in hub.glob("datasets--*")]
    return sorted(names)[:200]


class _Online:
    """An online tool goes quiet after its first failure (offline machines pay once)."""

    name = "online"

    def __init__(self) -> None:
        self.broken: str | None = None

    def search(self, query: str, k: int) -> list[Finding]:
        if self.broken is not None:
            return []
        try:
            return self._search(query, k)
        except Exception as exc:  # noqa: BLE001 - no network, rate limits, changed APIs: all end here
            self.broken = f"{type(exc).__name__}: {str(exc)[:160]}"
            log.info("%s search unavailable (%s); going on without it", self.name, self.broken)
            return []

    def _search(self, query: str, k: int) -> list[Finding]:
        raise NotImplementedError


class ArxivSearch(_Online):
    name = "arxiv"
    URL = "http://export.arxiv.org/api/query"

    def _search(self, query: str, k: int) -> list[Finding]:
        q = urllib.parse.urlencode({"search_query": f"all:{query}", "start": 0, "max_results": k})
        with urllib.request.urlopen(f"{self.URL}?{q}", timeout=ONLINE_TIMEOUT_S) as response:  # noqa: S310
            root = ET.fromstring(response.read())
        ns = {"a": "http://www.w3.org/2005/Atom"}
        out = []
        for entry in root.findall("a:entry", ns)[:k]:
            url = (entry.findtext("a:id", "", ns) or "").strip()
            paper = url.rsplit("/abs/", 1)[-1]
            out.append(
                Finding(
                    id=f"arxiv:{paper}",
                    title=" ".join((entry.findtext("a:title", "", ns)).split()),
                    snippet=_snippet(entry.findtext("a:summary", "", ns)),
                    source=self.name,
                    url=url,
                )
            )
        return out


class HubSearch(_Online):
    """Data sets on the Hugging Face Hub (``HF_ENDPOINT``, default huggingface.co), one plain HTTP GET.

    Not ``huggingface_hub.HfApi``: its retry back-off turns an unreachable hub into 23 s of waiting
    before the first plan; here a failure costs one request and the tool goes quiet."""

    name = "hf_hub"

    def _search(self, query: str, k: int) -> list[Finding]:
        import json

        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        q = urllib.parse.urlencode({"search": query, "limit": k})
        with urllib.request.urlopen(f"{endpoint}/api/datasets?{q}", timeout=ONLINE_TIMEOUT_S) as response:  # noqa: S310
            found = json.loads(response.read())
        return [
            Finding(
                id=f"hf:{ds['id']}",
                title=f"dataset {ds['id']}",
                source=self.name,
                snippet=_snippet(f"downloads {ds.get('downloads', '?')}"),
                url=f"{endpoint}/datasets/{ds['id']}",
            )
            for ds in found[:k]
        ]


def offline() -> bool:
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("TREX_OFFLINE", "HF_HUB_OFFLINE")
    )


def build_tools(names: tuple[str, ...] | list[str], notes_dir: str | None = None) -> list[SearchTool]:
    tools: list[SearchTool] = []
    for name in names:
        if name == "notes" and notes_dir:
            tools.append(NotesSearch(notes_dir))
        elif name == "catalog":
            tools.append(CatalogSearch())
        elif name == "arxiv" and not offline():
            tools.append(ArxivSearch())
        elif name == "hf_hub" and not offline():
            tools.append(HubSearch())
    return tools


def search_all(
    tools: list[SearchTool], queries: list[str], per_query: int = 3, limit: int = 10
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Findings of every query from every tool (deduplicated, best ranks first, at most ``limit``)
    and a record of each search."""
    ranked: dict[str, tuple[int, int, Finding]] = {}  # id -> (rank in its list, order seen, finding)
    records = []
    for query in queries:
        for tool in tools:
            found = tool.search(query, per_query)
            records.append(
                {
                    "tool": tool.name,
                    "query": query,
                    "found": [f.id for f in found],
                    "error": getattr(tool, "broken", None),
                }
            )
            for rank, f in enumerate(found):
                if f.id not in ranked:
                    ranked[f.id] = (rank, len(ranked), f)
    return [f for _, _, f in sorted(ranked.values(), key=lambda r: r[:2])][:limit], records
