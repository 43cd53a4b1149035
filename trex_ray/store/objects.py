"""Conditional writes to an object store: create-if-absent and replace-if-unchanged.

Two writers must never both believe they own a run. Where the store offers conditions, the decision
is the store's: S3 (and S3-compatible stores) ``PutObject`` with ``If-None-Match: *`` (create only if
absent) and ``If-Match: <etag>`` (replace only the version read), through boto3 — the endpoint,
region and keys come from the environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) or the
URI's ``endpoint_override`` / ``scheme`` / ``region`` parameters, as for pyarrow. Elsewhere
(``gs://`` through pyarrow, or no boto3) the same calls are made by read-then-write through
``pyarrow.fs``: correct for one writer at a time, a race for two starting within a second
(``atomic`` is False, and the lease says so once). Example::

    objects = conditional_objects("s3://bucket/runs/r1/lease.json")
    etag = objects.create(b"...")            # None: it exists already
    body, etag = objects.read()              # None: absent
    etag = objects.replace(b"...", etag)     # None: someone changed it since
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from typing import Any, Protocol

from trex_ray.store.files import resolve

log = logging.getLogger(__name__)


class ConditionalObject(Protocol):
    atomic: bool  # the store decides conditions (no race between two writers)

    def create(self, data: bytes) -> str | None:
        """Write ``data`` if the object does not exist; its etag, or None when it exists already."""
        ...

    def read(self) -> tuple[bytes, str] | None:
        """The object's bytes and etag, or None when absent."""
        ...

    def replace(self, data: bytes, etag: str) -> str | None:
        """Overwrite the object if it is still the version ``etag``; the new etag, or None."""
        ...

    def delete(self) -> None: ...


def conditional_objects(uri: str) -> ConditionalObject:
    """The conditional-write client for the object at ``uri`` (the store's own conditions if it has them)."""
    scheme = uri.partition("://")[0].lower()
    if scheme in ("s3", "s3a"):
        try:
            import boto3  # noqa: F401
        except ImportError:
            log.warning("boto3 is not installed: S3 conditional writes fall back to read-then-write")
        else:
            return S3Object(uri)
    return PyarrowObject(uri)


# --- S3: the store decides ---------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _s3_client(endpoint: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=10, read_timeout=30)
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def _s3_target(uri: str) -> tuple[str, str, str | None, str | None]:
    """(bucket, key, endpoint URL, region) of an ``s3://bucket/key?endpoint_override=...`` URI."""
    base, _, query = uri.partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    bucket, _, key = base.partition("://")[2].partition("/")
    # boto3 would read the environment's endpoint itself; read it here so that the cached client is
    # keyed by it (a changed AWS_ENDPOINT_URL must not reuse a client bound to the old one)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    if params.get("endpoint_override"):
        host = params["endpoint_override"]
        endpoint = host if "://" in host else f"{params.get('scheme') or 'https'}://{host}"
    region = params.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return bucket, key, endpoint, region


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_ABSENT = {"NoSuchKey", "404", "NotFound"}


class S3Object:
    atomic = True

    def __init__(self, uri: str) -> None:
        self.bucket, self.key, endpoint, region = _s3_target(uri)
        self.client = _s3_client(endpoint, region)

    def _put(self, data: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)
        except ClientError as exc:
            if _code(exc) in _CONFLICT:
                return None
            raise
        return str(answer["ETag"])

    def create(self, data: bytes) -> str | None:
        return self._put(data, IfNoneMatch="*")

    def replace(self, data: bytes, etag: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return self._put(data, IfMatch=etag)
        except ClientError as exc:
            if _code(exc) in _ABSENT:  # deleted since it was read
                return None
            raise

    def read(self) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if _code(exc) in _ABSENT:
                return None
            raise
        return answer["Body"].read(), str(answer["ETag"])

    def delete(self) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key)


# --- elsewhere: read, then write (one writer at a time) ---------------------------------------------
class PyarrowObject:
    atomic = False

    def __init__(self, uri: str) -> None:
        self.fs, self.path = resolve(uri)

    def _write(self, data: bytes) -> str:
        with self.fs.open_output_stream(self.path) as f:
            f.write(data)
        return _etag(data)

    def create(self, data: bytes) -> str | None:
        return None if self.read() is not None else self._write(data)

    def replace(self, data: bytes, etag: str) -> str | None:
        current = self.read()
        return self._write(data) if current is not None and current[1] == etag else None

    def read(self) -> tuple[bytes, str] | None:
        from pyarrow import fs as pafs

        if self.fs.get_file_info(self.path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(self.path) as f:
            data = bytes(f.read())
        return data, _etag(data)

    def delete(self) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            pass


def _etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
