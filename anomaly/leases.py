"""Detection scaled out: several ``aftercare detect --partitions P`` processes split the devices
through leases in PostgreSQL.

**Partitions.** Devices fall into ``P`` partitions by ``device_id % P`` (``P`` is fixed for a
deployment: changing it starts new partitions with fresh detector state). Each partition is an
ordinary :class:`~anomaly.worker.DetectWorker` named ``{name}.p{part}of{P}``, with its own
checkpoint, watermark and outbox, reading only its own devices: its connection's
``search_path`` puts a schema of views (``telemetry`` and ``waveforms`` narrowed to the
partition) in front of the store's tables, so the worker's code is the one a single worker runs.

**Leases** (table ``detect_leases``, the database's clock). Every ``renew_s`` a process
heartbeats (``detect_members``), renews the leases it holds for ``ttl_s``, claims free or expired
partitions up to its fair share ``ceil(P / live members)`` and hands back those beyond it. So a
process that dies has its partitions taken over within ``ttl_s + renew_s``, and a process that
joins gets its share within ``ttl_s + 2 * renew_s`` (the others see it at their next renewal and
hand partitions back). Every claim increases the partition's ``epoch``.

**Fencing.** A partition's connection carries ``aftercare.detect_lease`` (partition, epoch,
holder); a trigger on ``anomaly_checkpoints`` refuses a step's commit unless that lease is still
the current one. A process that lost a lease (paused past its expiry, cut off from the database)
cannot commit a step: it rolls back with its alert events, and the partition is dropped here.

**No alert missed or raised twice across a hand-over.** A step's alert events and its checkpoint
commit together. The new holder loads the partition's last committed checkpoint, first publishes
what the old holder queued and did not publish, then analyses the next slices. Alert ids are
deterministic (device, kind, opening time) and the outbox is unique per (partition, alert id,
revision), so a slice analysed again queues nothing twice; a publish repeated after a crash is
absorbed by the consumers' (alert id, revision) idempotence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from anomaly.bank import BankConfig
from anomaly.worker import Conn, DetectWorker, WorkerOptions, publish_pending

log = logging.getLogger("aftercare.detect")

LEASE_LOST = "AL001"  # SQLSTATE the fencing trigger raises


class LeaseLost(RuntimeError):
    """This process's lease on a partition is no longer the current one."""


def partition_name(name: str, part: int, partitions: int) -> str:
    """The checkpoint/outbox name of one partition.

    >>> partition_name("default", 3, 8)
    'default.p3of8'
    """
    return f"{name}.p{part}of{partitions}"


def default_member() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def ensure_partition_views(conn: Conn, part: int, partitions: int) -> str:
    """The schema of views narrowing telemetry and waveforms to one partition (created or
    refreshed); returns its name."""
    if not 0 <= part < partitions:
        raise ValueError(f"partition {part} is not within 0..{partitions - 1}")
    schema = f"detect_p{part}of{partitions}"
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('aftercare_detect_views'))")
        row = conn.execute("SELECT current_schema()").fetchone()
        base = sql.Identifier(str(row[0]) if row and row[0] else "public")
        s = sql.Identifier(schema)
        where = sql.SQL("device_id % {} = {}").format(sql.Literal(partitions), sql.Literal(part))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        conn.execute(sql.SQL(
            "CREATE OR REPLACE VIEW {}.telemetry AS SELECT * FROM {}.telemetry WHERE {}"
        ).format(s, base, where))
        conn.execute(sql.SQL(
            "CREATE OR REPLACE VIEW {}.waveforms AS SELECT * FROM {}.waveforms WHERE {}"
        ).format(s, base, where))
    return schema


@dataclass
class Held:
    part: int
    epoch: int


@dataclass
class Leases:
    """One process's view of the partition leases (an autocommit connection of its own)."""

    conn: Conn
    member: str
    partitions: int
    ttl_s: float = 15.0
    held: dict[int, Held] = field(default_factory=dict)
    renewed_at: float = 0.0  # monotonic time of the last successful renewal

    def __post_init__(self) -> None:
        if self.partitions < 1 or self.ttl_s <= 0:
            raise ValueError("partitions >= 1 and ttl_s > 0")
        self.conn.execute(
            "INSERT INTO detect_leases (partitions, part) "
            "SELECT %s, g FROM generate_series(0, %s - 1) g ON CONFLICT DO NOTHING",
            (self.partitions, self.partitions))

    def tick(self) -> dict[int, Held]:
        """Heartbeat, renew, claim up to the fair share, hand back the excess; what is held."""
        ttl = f"{self.ttl_s} seconds"
        c = self.conn
        started = time.monotonic()
        c.execute("INSERT INTO detect_members (member, partitions, seen_at) "
                  "VALUES (%s, %s, now()) ON CONFLICT (member) DO UPDATE "
                  "SET seen_at = now(), partitions = EXCLUDED.partitions",
                  (self.member, self.partitions))
        renewed = c.execute(
            "UPDATE detect_leases SET expires_at = now() + %s::interval "
            "WHERE partitions = %s AND holder = %s AND part = ANY(%s) "
            "RETURNING part, epoch",
            (ttl, self.partitions, self.member, list(self.held))).fetchall()
        now_held = {int(p): Held(int(p), int(e)) for p, e in renewed
                    if int(p) in self.held and self.held[int(p)].epoch == int(e)}
        for lost in set(self.held) - set(now_held):
            log.warning("lease on partition %d lost (taken over)", lost)
        row = c.execute("SELECT count(*) FROM detect_members WHERE partitions = %s "
                        "AND seen_at > now() - %s::interval", (self.partitions, ttl)).fetchone()
        live = max(1, int(row[0]) if row else 1)
        share = math.ceil(self.partitions / live)
        if len(now_held) < share:
            claimed = c.execute(
                "UPDATE detect_leases l SET holder = %s, epoch = l.epoch + 1, "
                "       expires_at = now() + %s::interval "
                "FROM (SELECT part FROM detect_leases WHERE partitions = %s "
                "      AND (holder IS NULL OR expires_at < now()) ORDER BY part "
                "      LIMIT %s FOR UPDATE SKIP LOCKED) f "
                "WHERE l.partitions = %s AND l.part = f.part RETURNING l.part, l.epoch",
                (self.member, ttl, self.partitions, share - len(now_held),
                 self.partitions)).fetchall()
            for p, e in claimed:
                now_held[int(p)] = Held(int(p), int(e))
                log.info("claimed partition %d of %d (epoch %d)", p, self.partitions, e)
        elif len(now_held) > share:
            extra = sorted(now_held)[share:]
            self.release(extra)
            for p in extra:
                now_held.pop(p)
        self.held = now_held
        self.renewed_at = started
        c.execute("DELETE FROM detect_members WHERE seen_at < now() - %s::interval",
                  (f"{10 * self.ttl_s} seconds",))
        return dict(now_held)

    def valid(self) -> bool:
        """Whether the last renewal is recent enough that the leases have not expired."""
        return time.monotonic() - self.renewed_at < self.ttl_s

    def release(self, parts: list[int]) -> None:
        if parts:
            self.conn.execute(
                "UPDATE detect_leases SET holder = NULL, expires_at = '-infinity' "
                "WHERE partitions = %s AND holder = %s AND part = ANY(%s)",
                (self.partitions, self.member, parts))
            log.info("handed back partitions %s", parts)

    def leave(self) -> None:
        """Hand everything back and stop counting as a member (a clean stop)."""
        self.release(list(self.held))
        self.held = {}
        self.conn.execute("DELETE FROM detect_members WHERE member = %s", (self.member,))


@dataclass
class Partition:
    held: Held
    conn: Conn
    worker: DetectWorker


def open_partition(database_url: str, options: WorkerOptions, member: str, held: Held,
                   partitions: int, config: BankConfig | None = None) -> Partition:
    """A DetectWorker for one leased partition, on a connection fenced by that lease."""
    conn = psycopg.connect(database_url, application_name=f"aftercare-detect {member}")
    try:
        schema = ensure_partition_views(conn, held.part, partitions)
        conn.execute("SELECT set_config('search_path', %s, false)",
                     (f'"{schema}", {_search_path(conn)}',))
        conn.execute("SELECT set_config('aftercare.detect_lease', %s, false)",
                     (f"{partitions}:{held.part}:{held.epoch}:{member}",))
        conn.commit()
        opts = replace(options, name=partition_name(options.name, held.part, partitions))
        return Partition(held, conn, DetectWorker(conn, opts, config))
    except Exception:
        conn.close()
        raise


def _search_path(conn: Conn) -> str:
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    return str(row[0]) if row else "public"


def step(p: Partition) -> None:
    """One step of a partition's worker, committed; :class:`LeaseLost` if the fence refused
    it. (The worker's step commits in a savepoint of the connection's open transaction: the
    commit here ends it, releasing the lease row's share lock.)"""
    try:
        p.worker.step()
        p.conn.commit()
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None) == LEASE_LOST:
            with_rollback(p.conn)
            raise LeaseLost(str(exc)) from None
        raise


def with_rollback(conn: Conn) -> None:
    if not conn.closed:
        conn.rollback()


async def run_partitioned(database_url: str, events_url: str, options: WorkerOptions, *,
                          partitions: int, ttl_s: float = 15.0, renew_s: float = 3.0,
                          poll_s: float = 2.0, member: str | None = None,
                          stop: asyncio.Event | None = None) -> None:
    """Run leased partitions until `stop` is set (or cancelled)."""
    from anomaly.publish import AlertPublisher

    if renew_s * 2 >= ttl_s:
        raise ValueError("renew_s must be well under ttl_s (at most half)")
    member = member or default_member()
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):  # a clean stop hands the leases back
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    open_: dict[int, Partition] = {}

    def close(part: int) -> None:
        p = open_.pop(part, None)
        if p is not None:
            p.conn.close()

    async with AlertPublisher(events_url) as publisher:
        with psycopg.connect(database_url, autocommit=True,
                             application_name=f"aftercare-detect-leases {member}") as lc:
            leases = await asyncio.to_thread(Leases, lc, member, partitions, ttl_s)
            next_tick = 0.0
            try:
                while not stop.is_set():
                    if time.monotonic() >= next_tick:
                        held = await asyncio.to_thread(leases.tick)
                        next_tick = time.monotonic() + renew_s
                        for part in [q for q in open_ if q not in held or
                                     held[q].epoch != open_[q].held.epoch]:
                            close(part)
                        for part, h in sorted(held.items()):
                            if part not in open_:
                                p = await asyncio.to_thread(open_partition, database_url,
                                                            options, member, h, partitions)
                                open_[part] = p
                                await publish_pending(p.worker, publisher)  # left by the last
                    progressed = False
                    for part in sorted(open_):
                        if not leases.valid() or time.monotonic() >= next_tick:
                            break  # renew first: never step on a lease that may have expired
                        p = open_[part]
                        before = p.worker.watermark_us
                        try:
                            await asyncio.to_thread(step, p)
                        except LeaseLost as exc:
                            log.warning("partition %d: %s; dropped", part, exc)
                            close(part)
                            leases.held.pop(part, None)
                            continue
                        await publish_pending(p.worker, publisher)
                        progressed |= p.worker.watermark_us != before
                    if not progressed:
                        wait = max(0.0, min(poll_s, next_tick - time.monotonic()))
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), wait)
            finally:
                for part in list(open_):
                    close(part)
                try:
                    await asyncio.to_thread(leases.leave)
                except psycopg.Error as exc:
                    log.warning("could not hand the leases back (%s); they expire in %.0f s",
                                exc, ttl_s)


def held_by(conn: Conn, partitions: int) -> dict[int, tuple[str | None, int]]:
    """Who holds each partition now (for tests and ``doctor``-style checks)."""
    rows = conn.execute("SELECT part, CASE WHEN expires_at > now() THEN holder END, epoch "
                        "FROM detect_leases WHERE partitions = %s ORDER BY part",
                        (partitions,)).fetchall()
    return {int(p): (h, int(e)) for p, h, e in rows}
