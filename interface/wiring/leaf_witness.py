"""The anchored leaves as a file in the data dir (``anchored-leaves``):
one 40-byte record per leaf of the log, in log order, the position (u64
big-endian) then the leaf's hash. Append-only; a torn last record (a crash
mid-write) is cut off when the file is opened. Why it exists and why it
needs no trust: ``application.settlement.anchor_witness``."""

from __future__ import annotations

import os
import struct
from pathlib import Path

FILE_NAME = "anchored-leaves"
_RECORD = struct.Struct(">q32s")
BUFFER_RECORDS_MAX = 25_000
"""Written out at least every this many leaves (1 MB): catching up a long
log holds no more than that in memory."""


class LeafWitnessFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._buffer = bytearray()
        self._size: int | None = None

    def _stored(self) -> int:
        if self._size is None:
            length = self.path.stat().st_size if self.path.exists() else 0
            if length % _RECORD.size:
                with open(self.path, "r+b") as handle:
                    handle.truncate(length - length % _RECORD.size)
            self._size = length // _RECORD.size
        return self._size

    def add(self, index: int, position: int, leaf: bytes) -> None:
        if index != self._stored() + len(self._buffer) // _RECORD.size:
            return
        self._buffer += _RECORD.pack(position, leaf)
        if len(self._buffer) >= BUFFER_RECORDS_MAX * _RECORD.size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        self._stored()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            unwritten = memoryview(bytes(self._buffer))
            while unwritten:
                unwritten = unwritten[os.write(descriptor, unwritten):]
        finally:
            os.close(descriptor)
        self._size = self._stored() + len(self._buffer) // _RECORD.size
        self._buffer.clear()

    def read(self, count: int) -> tuple[list[int], list[bytes]]:
        if not self.path.exists():
            return [], []
        with open(self.path, "rb") as handle:
            data = handle.read(count * _RECORD.size)
        records = [_RECORD.unpack_from(data, offset)
                   for offset in range(0, len(data) - _RECORD.size + 1, _RECORD.size)]
        return [position for position, _ in records], [leaf for _, leaf in records]


def leaf_witness(data_dir: Path) -> LeafWitnessFile:
    return LeafWitnessFile(data_dir / FILE_NAME)
