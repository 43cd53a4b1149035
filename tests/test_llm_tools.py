"""The online search tools of the research stage, against a real local HTTP server.

arXiv's Atom API and the Hub's ``/api/datasets`` are served from 127.0.0.1; an unreachable service
costs one quick failure (no retry back-off before the first plan) and the tool goes quiet.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trex_ray.research.llm.tools import ArxivSearch, HubSearch, search_all

ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <entry><id>http://arxiv.org/abs/2106.09685v2</id><title>LoRA: Low-Rank
    Adaptation</title><summary>We propose low-rank adaptation.</summary></entry>
</feed>"""


class _Handler(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(self.path)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/api/query":
            body, kind = ATOM.encode(), "application/atom+xml"
        elif url.path == "/api/datasets":
            limit = int(query["limit"][0])
            rows = [{"id": f"someone/{query['search'][0]}-{i}", "downloads": 10 * i} for i in range(5)]
            body, kind = json.dumps(rows[:limit]).encode(), "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def test_arxiv_and_hub_findings_are_parsed_from_their_apis(server: str, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", server)
    arxiv = ArxivSearch()
    arxiv.URL = f"{server}/api/query"
    found, records = search_all([arxiv, HubSearch()], ["lora"], per_query=2)
    assert [f.id for f in found] == ["arxiv:2106.09685v2", "hf:someone/lora-0", "hf:someone/lora-1"]
    assert found[0].title == "LoRA: Low-Rank Adaptation" and found[0].url.endswith("/abs/2106.09685v2")
    assert found[2].url == f"{server}/datasets/someone/lora-1"
    assert [r["error"] for r in records] == [None, None]
    assert any(p.startswith("/api/datasets?search=lora&limit=2") for p in _Handler.seen)


def test_an_unreachable_service_fails_once_fast_and_goes_quiet(monkeypatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", dead)
    arxiv = ArxivSearch()
    arxiv.URL = f"{dead}/api/query"
    hub = HubSearch()
    t0 = time.perf_counter()
    found, records = search_all([arxiv, hub], ["lora", "label noise"], per_query=3)
    elapsed = time.perf_counter() - t0
    assert found == [] and elapsed < 5, elapsed  # huggingface_hub's back-off took 23 s here
    assert arxiv.broken and hub.broken and "Connection refused" in hub.broken
    assert all(r["error"] for r in records) and len(records) == 4
