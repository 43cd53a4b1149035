"""Ray 2.60's token authentication, made consistent for trex's own connections.

Ray turns token authentication on for a cluster started while ``~/.ray/auth_token`` exists (the
first local ``ray.init()`` writes it) unless ``RAY_AUTH_MODE`` says otherwise; but a client that
connects to an explicit address (``RAY_ADDRESS``, ``ray job submit --address``) only sends the
token when ``RAY_AUTH_MODE=token`` is set in its own environment. So a job submitted to, or a
``trex status`` pointed at, such a cluster is refused. ``align_auth_mode`` sets
``RAY_AUTH_MODE=token`` for this process when the variable is unset and a token is available;
an explicit ``RAY_AUTH_MODE`` (``token`` or ``disabled``) is always kept. For ``ray start`` and
``ray job submit`` themselves, set the same ``RAY_AUTH_MODE`` in both shells (README: "Running on
a Ray cluster").
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MODE = "RAY_AUTH_MODE"


def token_available(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    if env.get("RAY_AUTH_TOKEN"):
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return Path(path).is_file()


def align_auth_mode() -> str | None:
    """Set ``RAY_AUTH_MODE=token`` when unset and a token exists; returns the mode in force."""
    if MODE not in os.environ and token_available():
        os.environ[MODE] = "token"
        log.debug("a Ray auth token exists: RAY_AUTH_MODE=token for this process")
        if "ray._raylet" in sys.modules:  # Ray read its config at import: make it see the new mode
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
    return os.environ.get(MODE)
