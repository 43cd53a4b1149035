"""Locations that are local paths or object-store URIs (``s3://``, ``gs://``), through ``pyarrow.fs``.

Every node of a cluster reaches a bucket the same way, so a run whose ``storage_path`` is a URI
can be resumed, and its checkpoints and prepared data used, from any node. Credentials and the
endpoint come from the environment, as for any pyarrow/boto client (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``...), or from URI query parameters
(``s3://bucket/runs?endpoint_override=127.0.0.1:9000&scheme=http``).

Example::

    upload_dir("/tmp/ckpt", join("s3://bucket/runs/r1", "nodes", "n3", "checkpoint"))
    download_dir("s3://bucket/runs/r1/nodes/n3/checkpoint", "/tmp/parent")
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COMPLETE = ".trex-complete"  # written last by upload_dir: the folder is whole


def is_remote(location: str | Path | None) -> bool:
    """A URI with a scheme other than file:// (``s3://``, ``gs://``, ``hdfs://``...)."""
    text = str(location or "")
    return "://" in text and not text.startswith("file://")


def join(location: str, *parts: str) -> str:
    """``location/part/...`` for a URI (query parameters kept at the end) or a local path."""
    if not is_remote(location):
        return str(Path(location, *parts))
    base, _, query = location.partition("?")
    joined = "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return f"{joined}?{query}" if query else joined


def basename(location: str) -> str:
    return location.partition("?")[0].rstrip("/").rsplit("/", 1)[-1]


@lru_cache(maxsize=32)
def _filesystem(uri_root: str) -> Any:
    from pyarrow import fs as pafs

    return pafs.FileSystem.from_uri(uri_root)[0]


def resolve(uri: str) -> tuple[Any, str]:
    """(pyarrow FileSystem, path inside it) for a URI; one FileSystem per bucket and options."""
    base, _, query = uri.partition("?")
    scheme, _, rest = base.partition("://")
    bucket = rest.split("/", 1)[0]
    root = f"{scheme}://{bucket}" + (f"?{query}" if query else "")
    return _filesystem(root), rest.rstrip("/")


def exists(location: str) -> bool:
    if not is_remote(location):
        return Path(location).exists()
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def is_complete_dir(location: str) -> bool:
    """Whether ``upload_dir`` finished writing this folder (its marker object exists)."""
    return exists(join(location, COMPLETE)) if is_remote(location) else Path(location).is_dir()


def upload_dir(local: str | Path, uri: str) -> str:
    """Copy a local folder to ``uri``; a marker written last says it is whole. Returns ``uri``."""
    from pyarrow import fs as pafs

    if not is_remote(uri):
        _copy_local(Path(local), Path(uri))
        return uri
    fs, path = resolve(uri)
    local_fs = pafs.LocalFileSystem()
    src = str(Path(local).absolute())
    pafs.copy_files(src, path, source_filesystem=local_fs, destination_filesystem=fs, use_threads=True)
    with fs.open_output_stream(f"{path}/{COMPLETE}") as f:
        f.write(b"ok")
    log.info("uploaded %s -> %s", local, uri)
    return uri


def download_dir(uri: str, local: str | Path) -> Path:
    """Copy the folder at ``uri`` to ``local`` (made atomically: a temp folder, then a rename)."""
    from pyarrow import fs as pafs

    target = Path(local)
    if not is_complete_dir(uri):
        raise FileNotFoundError(f"{uri}: no complete upload there")
    if not is_remote(uri):
        _copy_local(Path(uri), target)
        return target
    fs, path = resolve(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()  # copy_files makes only the folders an object store lists: a flat folder lists none
    try:
        pafs.copy_files(path, str(tmp), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem(),
                        use_threads=True)
        (tmp / COMPLETE).unlink(missing_ok=True)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # not a lost race with another downloader
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("downloaded %s -> %s", uri, target)
    return target


def _copy_local(src: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(src, tmp)
        if not target.exists():  # else another writer made the same folder meanwhile
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def remove_dir(location: str) -> None:
    """Delete a folder, local or stored (no error when it is gone already)."""
    if not is_remote(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)


def dir_size(location: str) -> int:
    """Bytes in the files under a folder, local or stored; 0 when it does not exist."""
    if not is_remote(location):
        root = Path(location)
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0
    from pyarrow import fs as pafs

    fs, path = resolve(location)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return 0
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)


def ensure_local(uri: str, local: str | Path) -> Path:
    """``local`` when it is there already, else downloaded from ``uri``."""
    target = Path(local)
    return target if target.is_dir() else download_dir(uri, target)
