"""``trex serve RUN_DIR``: the tree explorer on http://127.0.0.1, live while the run goes.

The page is the same self-contained HTML as ``trex report --format html``, marked live: it polls
``/data.json?since=VERSION`` and redraws when the run has moved on. Each poll re-reads the run
with ``Store(run_dir).replay()`` (read-only: a reader never repairs a journal that a live run is
writing), cached until the journal or snapshot changes; while nodes run, at most every few
seconds again, so that their log tails stay fresh. Stdlib only (``http.server``).

Safety: it binds to 127.0.0.1 by default, answers GET on three paths only, refuses requests
whose Host header is not this server (DNS rebinding), and sends the page's
Content-Security-Policy as a header too.

Example::

    server = make_server("runs/demo", port=0)      # port 0: any free port
    print(server.url)
    server.serve_forever()
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from trex_ray.report.explorer_data import explorer_data
from trex_ray.report.html import assets, render_html, safe_json
from trex_ray.store import JOURNAL, SNAPSHOT, read_tree
from trex_ray.tree import NodeStatus, SearchTree

log = logging.getLogger(__name__)

REFRESH_RUNNING_S = 3.0  # re-read at least this often while nodes run (their logs grow)


class RunWatcher:
    """The explorer data of a run directory, re-read only when the run has changed."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._data: dict[str, Any] | None = None
        self._read_at = 0.0

    def _stat_key(self) -> tuple[Any, ...]:
        key: list[Any] = []
        for name in (JOURNAL, SNAPSHOT):
            try:
                st = (self.run_dir / name).stat()
                key += [st.st_size, st.st_mtime_ns]
            except FileNotFoundError:
                key += [None, None]
        return tuple(key)

    def data(self) -> dict[str, Any]:
        with self._lock:
            key = self._stat_key()
            running = bool(self._data and self._data["counts"].get(NodeStatus.running.value))
            stale = running and time.monotonic() - self._read_at > REFRESH_RUNNING_S
            if self._data is None or key != self._key or stale:
                try:
                    tree = read_tree(self.run_dir)
                except FileNotFoundError:
                    tree = SearchTree()  # the run has not started yet: an empty page that fills in
                data = explorer_data(tree, self.run_dir, live=True)
                # The version names the content (a log tail can grow while the journal does not).
                digest = hashlib.sha1(safe_json({**data, "generated_at": 0}).encode()).hexdigest()[:16]
                self._data = {**data, "version": f"{tree.last_seq}-{digest}"}
                self._key, self._read_at = key, time.monotonic()
            return self._data


class ExplorerHandler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "trex-explorer"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if not self._host_ok():
            self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8")
            return
        url = urlsplit(self.path)
        try:
            if url.path in ("/", "/index.html"):
                page = render_html(self.server.watcher.data())
                self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            elif url.path == "/data.json":
                self._send_data(parse_qs(url.query).get("since", [None])[0])
            elif url.path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        except Exception as exc:  # a broken journal must not kill the server; say why
            log.exception("explorer: %s failed", url.path)
            body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, body, "application/json")

    def _send_data(self, since: str | None) -> None:
        data = self.server.watcher.data()
        if since is not None and since == data["version"]:
            body = json.dumps({"unchanged": True, "version": data["version"]})
        else:
            body = safe_json(data)
        self._send(HTTPStatus.OK, body.encode(), "application/json")

    def _host_ok(self) -> bool:
        if not self.server.check_host:
            return True
        host = (self.headers.get("Host") or "").lower()
        port = self.server.server_address[1]
        return host in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", self.server.public_host}

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", assets()[2] + "; frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        log.debug("explorer: " + format, *args)


class ExplorerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), ExplorerHandler)
        self.watcher = RunWatcher(run_dir)
        bound_host, bound_port = self.server_address[:2]
        self.public_host = f"{bound_host}:{bound_port}".lower()
        # On loopback, only our own names: a page elsewhere cannot rebind a name to us and read runs.
        self.check_host = host in ("127.0.0.1", "localhost", "::1")
        self.url = f"http://{bound_host}:{bound_port}/"


def make_server(run_dir: str | Path, port: int = 0, host: str = "127.0.0.1") -> ExplorerServer:
    """A server for the run's explorer; ``port=0`` picks a free port (see ``server.url``)."""
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    return ExplorerServer(run_dir, host=host, port=port)
