"""Run locations must not carry secrets: a URI with credentials would land in the journal, the logs
and every message that names the run.

Refused: a user part (``s3://KEY:SECRET@bucket/runs``, ``s3://KEY@bucket``) and query parameters that
name a key, secret, token, password or signature (``?access_key=...&secret_key=...``,
``?X-Amz-Signature=...``). Kept: other options such as ``?endpoint_override=host:9000&scheme=http``.
The error never repeats the location. Example::

    credentials_problem("s3://bucket/runs?region=eu-west-1")  # None
    credentials_problem("s3://AKIA:abc@bucket/runs")          # "holds credentials (user:password@...)"
"""

from __future__ import annotations

import re

_SECRET_PARAM = re.compile(r"(?i)(key|secret|token|passw|pwd|signature|sig$|credential|auth|session)")


def credentials_problem(location: str | None) -> str | None:
    """What makes ``location`` carry credentials, or None; never echoes the location itself."""
    text = str(location or "")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return None
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        return "holds credentials (user:password@...)"
    query = rest.partition("?")[2].partition("#")[0]
    for pair in re.split(r"[&;]", query):
        name = pair.partition("=")[0]
        if name and _SECRET_PARAM.search(name):
            return "holds a credential in its query string"
    return None


def credentials_error(location: str | None, field: str = "") -> str | None:
    """A one-line error (prefixed by ``field``) when ``location`` carries credentials, else None."""
    problem = credentials_problem(location)
    if problem is None:
        return None
    prefix = f"{field}: " if field else ""
    return (f"{prefix}the URI {problem}; remove the credentials and give them through the environment "
            "(e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or GOOGLE_APPLICATION_CREDENTIALS)")
