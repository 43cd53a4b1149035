"""The explorer without a browser: its data, the page's escaping and policy, the server, the PNG plots."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from run_builder import RunBuilder, demo_run

from trex_ray.cli import main
from trex_ray.report.explorer_data import LOG_TAIL_LINES, best_vs_compute, explorer_data
from trex_ray.report.html import render_html, safe_json, write_html
from trex_ray.report.plots import write_pngs
from trex_ray.report.serve import make_server
from trex_ray.store import Store, read_tree

PAYLOAD = "</script><script>alert(1)</script><img src=x onerror=alert(2)>&amp;\u2028\u2029"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("explorer-unit") / "demo"
    demo_run(run_dir, payload=PAYLOAD)
    return run_dir


def test_safe_json_escapes_what_could_end_a_script_and_stays_json() -> None:
    data = {"text": PAYLOAD, "loss": math.nan, "inf": [math.inf, 1.5]}
    out = safe_json(data)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in out
    back = json.loads(out)
    assert back == {"text": PAYLOAD, "loss": None, "inf": [None, 1.5]}


def test_page_is_self_contained_and_its_policy_allows_only_its_own_script(demo: Path) -> None:
    page = write_html(demo).read_text()
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1  # ours; the data block is type="application/json"
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert f"script-src 'sha256-{digest}'" in policy and "unsafe" not in policy
    assert "default-src 'none'" in policy
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched from a CDN
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page
    blob = re.search(r'id="trex-data">(.*?)</script>', page, flags=re.S).group(1)
    assert "<" not in blob and json.loads(blob)["run_id"] == PAYLOAD


def test_explorer_data_describes_every_node(demo: Path) -> None:
    tree = read_tree(demo)
    data = explorer_data(tree, demo)
    assert len(data["nodes"]) == len(tree) and data["seq"] == tree.last_seq
    assert data["best_path"] == [n.id for n in tree.best_path()]
    by_id = {n["id"]: n for n in data["nodes"]}
    diverged = next(n for n in tree if n.result and n.result.failure and n.result.failure.value == "diverged")
    assert by_id[diverged.id]["curve"][-1][2] is None  # NaN loss -> null, the page marks it
    assert PAYLOAD in by_id["n0"]["log"]
    assert {"+data.dedup", "+data.label_noise_filter", "train.mode=full"} <= set(by_id["n2"]["changes"])
    compute = [c for c, _, _ in best_vs_compute(tree)]
    assert compute == sorted(compute) and len(compute) == sum(1 for n in tree if n.result)
    bests = [b for _, b, _ in best_vs_compute(tree) if b is not None]
    assert bests == sorted(bests) and bests[-1] == tree.best().metric


def test_log_tail_keeps_the_end_of_a_long_log(tmp_path: Path) -> None:
    b = RunBuilder(tmp_path / "run")
    b.start_run()
    b.write_log("n0", "".join(f"line {i}\n" for i in range(5000)))
    from trex_ray.report.explorer_data import log_tail

    tail = log_tail(b.run_dir, "n0").splitlines()
    assert tail[-1] == "line 4999" and len(tail) == LOG_TAIL_LINES


def test_reading_a_live_run_never_cuts_its_journal(demo: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "live"
    tree = demo_run(run_dir, finish=False)
    journal = run_dir / "journal.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"kind": "node_progress", "node_id": "n1", "payl')  # a writer mid-append
    before = journal.read_bytes()
    assert len(read_tree(run_dir)) == len(tree)
    assert journal.read_bytes() == before


def _get(url: str, host: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_server_answers_page_data_and_nothing_else(tmp_path: Path) -> None:
    run_dir = tmp_path / "served"
    tree = demo_run(run_dir, finish=False)
    server = make_server(run_dir, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, headers, body = _get(server.url)
        assert status == 200 and "script-src 'sha256-" in headers["Content-Security-Policy"]
        assert b'"live":true' in body
        status, _, body = _get(server.url + "data.json")
        data = json.loads(body)
        assert status == 200 and len(data["nodes"]) == len(tree)
        since = server.url + f"data.json?since={data['version']}"
        assert json.loads(_get(since)[2]) == {"unchanged": True, "version": data["version"]}
        Store(run_dir).append(_finished_event())  # the run goes on
        assert json.loads(_get(since)[2])["seq"] == data["seq"] + 1
        assert _get(server.url + "../journal.jsonl")[0] == 404
        assert _get(server.url + "data.json", host="evil.example:80")[0] == 403  # DNS rebinding
    finally:
        server.shutdown()
        server.server_close()


def test_watcher_refreshes_log_tails_of_running_nodes(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from factories import make_plan

    from trex_ray.report import serve
    from trex_ray.spec import Outcome, Result, TrainMode

    monkeypatch.setattr(serve, "REFRESH_RUNNING_S", 0.0)
    b = RunBuilder(tmp_path / "run")
    b.start_run()
    root = b.add(None, make_plan(mode=TrainMode.none))
    b.finish(root, Result(outcome=Outcome.finished, metric=0.3))
    running = b.add(root, make_plan())
    b.start(running)
    watcher = serve.RunWatcher(b.run_dir)
    before = watcher.data()
    assert watcher.data()["version"] == before["version"]  # nothing changed
    b.write_log(running, "step 10 loss 1.5\n")
    after = watcher.data()
    assert after["version"] != before["version"] and after["seq"] == before["seq"]
    assert next(n for n in after["nodes"] if n["id"] == running)["log"] == "step 10 loss 1.5"


def _finished_event():  # type: ignore[no-untyped-def]
    from trex_ray.tree import Event, EventKind

    return Event(kind=EventKind.run_finished, payload={"reason": "budget"})


def test_png_plots_are_written(demo: Path, tmp_path: Path) -> None:
    paths = write_pngs(demo, tmp_path / "plots")
    names = {p.name for p in paths}
    assert {"best_vs_compute.png", "loss_curves.png"} <= names
    assert any(n.startswith("curve_n") for n in names)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_cli_writes_html_and_png(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.html"
    assert main(["report", str(demo), "--format", "html", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(demo), "--format", "png", "--out", str(tmp_path / "png")]) == 0
    assert (tmp_path / "png" / "best_vs_compute.png").exists()
    assert main(["report", str(tmp_path / "nothing"), "--format", "html"]) == 2
    assert "not a trex run directory" in capsys.readouterr().err


def test_render_html_refuses_assets_that_could_close_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    from trex_ray.report import html

    html.assets.cache_clear()
    monkeypatch.setattr(html, "_script", lambda: "var x = '</script>';")
    with pytest.raises(ValueError, match="must not contain"):
        render_html({"nodes": []})
    html.assets.cache_clear()
