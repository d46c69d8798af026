"""A durable local spool: received messages reach the disk before the broker is told so.

The ingest worker appends every message it receives to the spool, ``fsync``s, and only then
acknowledges it to the broker. The database is written from the spool, and the spool's
*committed* position moves forward only after the database transaction has committed. So:

- a database outage costs disk, not data: the spool grows by the payload bytes while the
  broker keeps delivering (its own queue limits no longer matter), and the writer catches up
  from the spool afterwards at COPY speed;
- a crash (``kill -9``) loses nothing: what was acknowledged is on disk; what was not is
  redelivered by the broker; a replay after a crash is stored once (the telemetry key is
  unique and rejects carry the spool position as ``source_key``);
- memory stays bounded whatever the backlog: the writer reads a batch at a time.

Layout: a directory per worker (its MQTT client id) holding numbered segment files and a
``committed`` file. A record is ``<body length u32><crc32 u32><body>`` where the body is
``<received-at µs i64><topic length u16><topic><payload>``; a torn record at the end of the
last segment (a crash mid-write, never acknowledged) is cut off on open.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d, Spool(d) as sp:
...     sp.append("devices/a/telemetry", b"{}", 1)
...     _ = sp.sync()
...     records, end = sp.read(sp.committed, max_records=10)
...     [(r.topic, r.payload) for r in records]
[('devices/a/telemetry', b'{}')]
"""

from __future__ import annotations

import collections
import fcntl
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple

from ingest.records import EPOCH

_HEAD = struct.Struct("<II")   # body length, crc32 of the body
_BODY = struct.Struct("<qH")   # received at (µs since the epoch), topic length
MAX_RECORD_BYTES = 16 * 1024 * 1024
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 4 * 1024 * 1024
_FRESH_MAX_BYTES = 16 * 1024 * 1024  # in-memory hand-over to the reader, beyond it: disk
BATCH_MAX_BYTES = 8 * 1024 * 1024  # a read returns about this much at most (one batch)


class SpoolError(RuntimeError):
    """The spool cannot be used (held by another worker, unreadable committed file, ...)."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    segment: int
    offset: int

    def __str__(self) -> str:
        return f"{self.segment}:{self.offset}"


class Record(NamedTuple):
    """One spooled message; ``key`` names its place in this spool, unique for good.

    (A named tuple: a batch reads thousands, and a frozen dataclass costs ~3x to build.)"""

    topic: str
    payload: bytes
    received_us: int
    key: str

    @property
    def received_at(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.received_us)


def _seg_name(n: int) -> str:
    return f"{n:016d}.seg"


class Spool:
    """Append + fsync on the receiving side, read + commit on the writing side.

    One thread appends and syncs, another reads and commits; both may run at once.
    """

    def __init__(self, directory: str | Path, *, name: str = "spool",
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.segment_bytes = segment_bytes
        self._lock_fh = open(self.dir / "lock", "a+b")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            raise SpoolError(f"spool {self.dir} is in use by another worker") from None
        self._topics: dict[bytes, str] = {}
        # (start, end, records, bytes) of appended chunks: not yet synced, and synced but
        # not yet read.
        self._unsynced: list[tuple[Position, Position, list[Record], int]] = []
        self._fresh: collections.deque[tuple[Position, Position, list[Record], int]] = \
            collections.deque()
        self._fresh_bytes = 0
        self._seg_end: dict[int, int] = {}
        self._mutex = threading.Lock()
        self._changed = threading.Condition(self._mutex)
        self.committed = self._load_committed()
        segments = self._segments()
        for seg in [s for s in segments if s < self.committed.segment]:
            # Committed, but the crash came before they were removed.
            (self.dir / _seg_name(seg)).unlink()
        segments = [s for s in segments if s >= self.committed.segment]
        if not segments:
            segments = [max(self.committed.segment, 1)]
            (self.dir / _seg_name(segments[0])).touch()
        if self.committed.segment < segments[0]:
            self.committed = Position(segments[0], 0)
        self._recover(segments[-1])
        self._wseg = segments[-1]
        self._wfh: BinaryIO = open(self.dir / _seg_name(self._wseg), "ab")  # noqa: SIM115
        self._woff = self._wfh.tell()
        self.synced = Position(self._wseg, self._woff)
        self._pending_bytes = sum(self._seg_size(s) for s in segments) - self.committed.offset
        self.appended_bytes = 0  # synced since this process opened the spool

    # -- files -----------------------------------------------------------------------------

    def _segments(self) -> list[int]:
        return sorted(int(p.name[:16]) for p in self.dir.glob("*.seg") if p.name[:16].isdigit())

    def _seg_size(self, n: int) -> int:
        try:
            return (self.dir / _seg_name(n)).stat().st_size
        except FileNotFoundError:
            return 0

    def _load_committed(self) -> Position:
        path = self.dir / "committed"
        if not path.exists():
            return Position(0, 0)
        text = path.read_text(encoding="ascii").strip()
        try:
            seg, off = (int(x) for x in text.split(":"))
        except ValueError:
            raise SpoolError(f"{path} holds {text!r}, not SEGMENT:OFFSET") from None
        return Position(seg, off)

    def _recover(self, segment: int) -> None:
        """Cut a torn record off the end of the last segment (written, never synced)."""
        path = self.dir / _seg_name(segment)
        good = 0
        with open(path, "rb") as fh:
            data = fh.read()
        while good + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, good)
            end = good + _HEAD.size + length
            if length < _BODY.size or end > len(data) or \
                    zlib.crc32(data[good + _HEAD.size:end]) != crc:
                break
            good = end
        if good != len(data):
            with open(path, "r+b") as fh:
                fh.truncate(good)
                os.fsync(fh.fileno())

    # -- receiving side ----------------------------------------------------------------------

    def append(self, topic: str, payload: bytes, received_us: int) -> None:
        """Buffer one message; it is durable after the next :meth:`sync`."""
        self.append_many([(topic, payload, received_us)])

    def append_many(self, items: list[tuple[str, bytes, int]]) -> None:
        """Buffer (topic, payload, received µs) messages; durable after the next sync."""
        parts = []
        body_pack, head_pack, crc = _BODY.pack, _HEAD.pack, zlib.crc32
        start = Position(self._wseg, self._woff)
        prefix = f"{self.name}:{self._wseg}:"
        off = self._woff
        fresh = []
        for topic, payload, received_us in items:
            t = topic.encode("utf-8", "surrogateescape")[:65535]
            body = body_pack(received_us, len(t)) + t + payload
            if len(body) > MAX_RECORD_BYTES:
                # Never happens with a broker that enforces the contract's 256 KiB; keep
                # the head so the reject still says what it was.
                body = body[:MAX_RECORD_BYTES]
            parts.append(head_pack(len(body), crc(body)))
            parts.append(body)
            fresh.append(Record(topic, payload, received_us, prefix + str(off)))
            off += _HEAD.size + len(body)
        data = b"".join(parts)
        self._wfh.write(data)
        self._woff += len(data)
        self._unsynced.append((start, Position(self._wseg, self._woff), fresh, len(data)))

    def sync(self) -> Position:
        """Make everything appended durable; returns the new synced end."""
        self._wfh.flush()
        os.fsync(self._wfh.fileno())
        with self._changed:
            grown = self._woff - self.synced.offset \
                if self.synced.segment == self._wseg else self._woff
            self._pending_bytes += grown
            self.appended_bytes += grown
            self.synced = Position(self._wseg, self._woff)
            # What was just written is handed to the reader from memory while it keeps up
            # (bounded: a reader far behind reads the disk instead).
            for chunk in self._unsynced:
                if self._fresh_bytes + chunk[3] <= _FRESH_MAX_BYTES:
                    self._fresh.append(chunk)
                    self._fresh_bytes += chunk[3]
            self._unsynced.clear()
            self._changed.notify_all()
        if self._woff >= self.segment_bytes:
            self._rotate()
        return self.synced

    def _rotate(self) -> None:
        self._wfh.close()
        with self._mutex:
            self._seg_end[self._wseg] = self._woff
        self._wseg += 1
        self._wfh = open(self.dir / _seg_name(self._wseg), "ab")  # noqa: SIM115
        self._woff = 0
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new segment's name is durable before anything in it is
        finally:
            os.close(dir_fd)
        with self._changed:
            self.synced = Position(self._wseg, 0)

    # -- writing side ------------------------------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        """Bytes spooled and not yet committed to the database."""
        return max(0, self._pending_bytes)

    def wait(self, after: Position, timeout_s: float) -> bool:
        """Wait until something beyond `after` is synced; True if there is."""
        with self._changed:
            return self._changed.wait_for(lambda: self.synced > after, timeout_s)

    def read(self, start: Position, *, max_records: int,
             max_bytes: int = BATCH_MAX_BYTES) -> tuple[list[Record], Position]:
        """Synced records from `start` on (at most `max_records` / about `max_bytes`), and
        the position after the last one returned."""
        with self._mutex:
            end = self.synced
            if self._seg_end.get(start.segment) == start.offset:
                start = Position(start.segment + 1, 0)  # the end of a rotated segment
            fresh = self._from_memory(start, max_records, max_bytes)
        if fresh is not None:
            return fresh
        out: list[Record] = []
        pos = start
        size = 0
        while len(out) < max_records and size < max_bytes and pos < end:
            limit = end.offset if pos.segment == end.segment else self._seg_size(pos.segment)
            if pos.offset >= limit:
                if pos.segment >= end.segment:
                    break
                pos = Position(pos.segment + 1, 0)
                continue
            with open(self.dir / _seg_name(pos.segment), "rb") as fh:
                fh.seek(pos.offset)
                # A few MB at a time (a batch is ~1 MB); more if one record is bigger.
                data = fh.read(min(limit - pos.offset, _READ_CHUNK))
                if len(data) >= _HEAD.size:
                    need = _HEAD.size + _HEAD.unpack_from(data)[0]
                    if need > len(data):
                        data += fh.read(min(limit - pos.offset, need) - len(data))
            off = 0
            n_data = len(data)
            head_unpack, body_unpack, crc32 = _HEAD.unpack_from, _BODY.unpack_from, zlib.crc32
            hs, bs = _HEAD.size, _BODY.size
            prefix = f"{self.name}:{pos.segment}:"
            topics = self._topics
            while len(out) < max_records and off + hs <= n_data:
                length, crc = head_unpack(data, off)
                b0 = off + hs
                body_end = b0 + length
                if body_end > n_data:
                    break
                if crc32(memoryview(data)[b0:body_end]) != crc:
                    raise SpoolError(f"spool {self.dir} segment {pos.segment} is corrupt at "
                                     f"offset {pos.offset + off}")
                received_us, topic_len = body_unpack(data, b0)
                traw = data[b0 + bs:b0 + bs + topic_len]
                topic = topics.get(traw)
                if topic is None:
                    topic = traw.decode("utf-8", "surrogateescape")
                    if len(topics) < 200_000:
                        topics[traw] = topic
                out.append(Record(topic, data[b0 + bs + topic_len:body_end], received_us,
                                  prefix + str(pos.offset + off)))
                off = body_end
                size += length
            pos = Position(pos.segment, pos.offset + off)
            if off == 0:
                break
        return out, pos

    def _from_memory(self, start: Position, max_records: int, max_bytes: int
                     ) -> tuple[list[Record], Position] | None:
        """Records from `start` on, if they are still held in memory (caller holds the lock)."""
        fresh = self._fresh
        while fresh and fresh[0][1] <= start:
            self._fresh_bytes -= fresh.popleft()[3]
        if not fresh or fresh[0][0] != start:
            return None
        out: list[Record] = []
        end = start
        size = 0
        for chunk_start, chunk_end, records, n_bytes in fresh:
            if chunk_start != end and not (chunk_start == Position(end.segment + 1, 0) and
                                           self._seg_end.get(end.segment) == end.offset):
                break
            if out and (len(out) + len(records) > max_records or size + n_bytes > max_bytes):
                break
            out += records
            size += n_bytes
            end = chunk_end
        return out, end

    def commit(self, pos: Position) -> None:
        """Everything before `pos` is in the database: remember it, free whole segments."""
        tmp = self.dir / "committed.tmp"
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(str(pos))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir / "committed")
        with self._mutex:
            freed = 0
            old = self.committed
            for seg in self._segments():
                if seg >= pos.segment:
                    break
                freed += self._seg_size(seg) - (old.offset if seg == old.segment else 0)
                (self.dir / _seg_name(seg)).unlink(missing_ok=True)
            if pos.segment == old.segment:
                freed += pos.offset - old.offset
            else:
                freed += pos.offset
            self._pending_bytes -= freed
            self.committed = pos

    def close(self) -> None:
        try:
            self._wfh.flush()
            os.fsync(self._wfh.fileno())
        finally:
            self._wfh.close()
            self._lock_fh.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
