"""Read TensorBoard event files back: the TFRecord framing TensorBoard reads, decoded with the
protobuf classes tensorboardX writes with (the ``tensorboard`` package is not installed here).

Example::

    scalars, hparams = read_events("runs/r/tensorboard/n1")
    scalars["train/loss"]   # [(step, value), ...]
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from tensorboardX.crc32c import crc32c
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData


def _masked(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path: Path) -> list[bytes]:
    """Each record of one event file, its length and data checksums verified."""
    blob, out, i = path.read_bytes(), [], 0
    while i < len(blob):
        header = blob[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", blob[i + 8:i + 12])[0] == _masked(header), f"{path}: bad length crc"
        data = blob[i + 12:i + 12 + length]
        assert struct.unpack("<I", blob[i + 12 + length:i + 16 + length])[0] == _masked(data), "bad data crc"
        out.append(data)
        i += 16 + length
    return out


def read_events(logdir: str | Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, Any]]:
    """Scalars by tag as (step, value), and the hyper-parameters of the HParams session start."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    hparams: dict[str, Any] = {}
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        for data in records(path):
            event = Event.FromString(data)
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    plugin = HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    if plugin.HasField("session_start_info"):
                        for key, v in plugin.session_start_info.hparams.items():
                            hparams[key] = getattr(v, v.WhichOneof("kind"))
                elif value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars, hparams
