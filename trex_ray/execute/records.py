"""A source's raw records, as its files hold them, for sources with a ``convert`` (``spec/builtin.py``;
the FT-Bench conversions are ``ftbench/convert.py``).

Records are read without ``datasets``' type inference where the file is JSON: real benchmark files
mix types inside one field (GTA's turns hold text or objects), which Arrow cannot hold in a column.
Where they come from: a local file; an http(s) URL (downloaded once into the HF cache, offline mode
respected); one ``data_file`` of a hub dataset repo; else the hub dataset's split.

Example::

    records = read_records(DataSource(id="Jize1/GTA", data_file="dataset.json", convert="gta"))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Value

from trex_ray.spec import DataSource
from trex_ray.spec.builtin import ConvertError, convert

COLUMNS = ("input", "target", "system", "history")  # as sources.COLUMNS
Record = dict[str, Any]


def as_records(obj: Any) -> list[Record]:
    """A JSON file's records: a list of objects, or an object of objects keyed by id (GTA)."""
    if isinstance(obj, list):
        return [r for r in obj if isinstance(r, dict)]
    if isinstance(obj, dict) and obj and all(isinstance(v, dict) for v in obj.values()):
        return [{"id": k, **v} for k, v in obj.items()]
    return [obj] if isinstance(obj, dict) else []


def _path(src: DataSource) -> Path | None:
    """The local file holding the source, downloaded if need be; None for a hub split."""
    if src.kind == "local":
        return Path(src.id).expanduser()
    if src.kind == "url":
        from datasets.utils.file_utils import cached_path

        return Path(cached_path(src.id))
    if src.data_file:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(src.id, src.data_file, repo_type="dataset", revision=src.revision))
    return None


def read_file(path: Path) -> list[dict[str, Any]]:
    """Records of a .json (a list, or an object keyed by id), .jsonl, .csv or .parquet file."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        text = path.read_text(encoding="utf-8")
        try:
            return as_records(json.loads(text))
        except json.JSONDecodeError:  # JSON lines, whatever the suffix (CS-Bench's en_test.json)
            return [r for line in text.splitlines() if line.strip() for r in as_records(json.loads(line))]
    if suffix in (".csv", ".parquet"):
        import datasets

        builder = "csv" if suffix == ".csv" else "parquet"
        return list(datasets.load_dataset(builder, data_files=str(path), split="train").to_list())
    raise ValueError(f"file type {suffix!r} is not read; convert it to .json, .jsonl, .csv or .parquet")


def read_records(src: DataSource) -> list[dict[str, Any]]:
    """Every record of the source; raises OSError / ValueError (the caller makes it one line)."""
    path = _path(src)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {path}")
        return read_file(path)
    import datasets

    ds = datasets.load_dataset(src.id, src.config, split=src.split, revision=src.revision)
    return list(ds.to_list())


def load_converted(src: DataSource, field: Callable[[str], str],
                   error: Callable[[str], Exception]) -> Dataset:
    """A source in its own schema, turned into the string columns input / target / system / history by
    its named conversion. ``field`` names a spec field as the task does (``data.train[0].convert``);
    ``error`` makes the one-line error of the source."""
    try:
        records = read_records(src)
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing, unreadable: one line
        raise error(f"cannot read its records ({_brief(exc)}); fix {field('id')}, "
                    f"{field('data_file')} or the network") from exc
    try:
        pairs = convert(str(src.convert), records)
    except ConvertError as exc:
        raise error(f"conversion {src.convert!r}: {exc}; point {field('id')} at data in the "
                    "schema the conversion reads (docs/ftbench.md)") from exc
    except ValueError as exc:
        raise error(f"{field('convert')}: {exc}") from exc
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise error(f"conversion {src.convert!r}: a record is not in the schema it reads "
                    f"({_brief(exc)}); see docs/ftbench.md") from exc
    if not pairs:
        raise error(f"conversion {src.convert!r} left no rows; check that the file holds its examples")
    pairs = pairs[: src.limit] if src.limit is not None else pairs
    n = len(pairs)
    rows = {"input": [p[0] for p in pairs], "target": [p[1] for p in pairs],
            "system": [""] * n, "history": ["[]"] * n}
    return Dataset.from_dict(rows, features=Features({c: Value("string") for c in COLUMNS}))


def _brief(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
