"""The tree explorer as ONE self-contained, offline HTML file.

The page's own script and stylesheet (``static/explorer*.js``, ``static/explorer.css``) are
inlined and allowed by a Content-Security-Policy that names their SHA-256 hashes and nothing
else: no inline handlers, no other scripts, no network except the page's own ``/data.json``
when it is served live. The run's data travels as JSON in ``<script type="application/json">``
with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\u`` escapes, and the script builds
every element from it with ``textContent`` — text from plans, logs, datasets or an LLM is
shown, never parsed as markup.

Example::

    tree = Store(run_dir).replay()
    Path("explorer.html").write_text(render_html(explorer_data(tree, run_dir)))
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from trex_ray.report.explorer_data import explorer_data
from trex_ray.store import read_tree

STATIC = Path(__file__).with_name("static")
SCRIPTS = ("explorer_core.js", "explorer_panels.js", "explorer.js")  # concatenated in this order
STYLES = ("explorer.css",)

_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _finite(obj: Any) -> Any:
    """A copy with NaN/inf replaced by None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def safe_json(data: Any) -> str:
    """Strict JSON that is also safe inside an HTML ``<script>`` element (and in JS source)."""
    text = json.dumps(_finite(data), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _read(names: tuple[str, ...]) -> str:
    return "\n".join((STATIC / name).read_text(encoding="utf-8") for name in names)


def _script() -> str:
    """The explorer's JS files as one script, wrapped so that nothing leaks into the page's globals."""
    return "(function () {\n" + _read(SCRIPTS) + "\n})();"


def csp(script: str, style: str) -> str:
    """The page's policy: only our own inline script and stylesheet run; data: images for nothing
    but our own exports; fetches only to the page's origin (the live server)."""
    return "; ".join([
        "default-src 'none'",
        f"script-src '{_sha256(script)}'",
        f"style-src '{_sha256(style)}'",
        "img-src data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
    ])


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>trex explorer</title>
<style>{style}</style>
</head>
<body>
<noscript>The trex tree explorer needs JavaScript.</noscript>
<script type="application/json" id="trex-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""


@lru_cache(maxsize=1)
def assets() -> tuple[str, str, str]:
    """(script, stylesheet, Content-Security-Policy) of the page, read once from ``static/``."""
    script, style = _script(), _read(STYLES)
    if "</" in script or "</" in style:
        raise ValueError("static explorer assets must not contain '</' (it would end the inline element)")
    return script, style, csp(script, style)


def render_html(data: dict[str, Any]) -> str:
    """The explorer page for ``data`` (from :func:`explorer_data`)."""
    script, style, policy = assets()
    return PAGE.format(policy=policy, style=style, data=safe_json(data), script=script)


def write_html(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the explorer of a run to ``out`` (default ``RUN_DIR/explorer.html``)."""
    run_dir = Path(run_dir)
    tree = read_tree(run_dir)
    path = Path(out) if out else run_dir / "explorer.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(explorer_data(tree, run_dir)), encoding="utf-8")
    return path
