"""Detection scaled out through leases in PostgreSQL (anomaly/leases.py), on the real store:
partitions split between members, rebalanced when one joins, taken over when one dies, and a
stale holder fenced off, with the same alerts as one worker, each queued once."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from anomaly.leases import (
    LeaseLost,
    Leases,
    Partition,
    held_by,
    open_partition,
    partition_name,
    step,
)
from anomaly.worker import DetectWorker, WorkerOptions
from tests.anomaly.test_worker import CONFIG, write_fleet
from tests.support.anomaly import run_until_caught_up

pytestmark = pytest.mark.db

P = 2  # pump-1 and pump-2 fall in different partitions
OPTIONS = WorkerOptions(name="scaled", settle_s=0, max_span_s=100)


def _leases(dsn: str, member: str, ttl_s: float = 30.0) -> Leases:
    return Leases(psycopg.connect(dsn, autocommit=True), member, P, ttl_s)


def _open(dsn: str, leases: Leases) -> dict[int, Partition]:
    return {part: open_partition(dsn, OPTIONS, leases.member, h, P, CONFIG)
            for part, h in leases.held.items()}


def _queued(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    rows = conn.execute("SELECT alert_id, revision FROM anomaly_outbox WHERE worker LIKE %s",
                        (f"{OPTIONS.name}.p%of{P}",)).fetchall()
    conn.commit()
    return [(str(a), int(r)) for a, r in rows]


def test_members_share_rebalance_take_over_and_fence(store_conn: psycopg.Connection[Any],
                                                      store_dsn: str) -> None:
    write_fleet(store_conn)
    solo = run_until_caught_up(DetectWorker(store_conn, WorkerOptions(
        name="solo", settle_s=0, max_span_s=100), CONFIG))
    assert solo, "the fleet must raise alerts for the comparison to mean anything"

    a = _leases(store_dsn, "member-a", ttl_s=2.0)
    assert sorted(a.tick()) == [0, 1]                  # alone: everything
    b = _leases(store_dsn, "member-b", ttl_s=2.0)
    assert b.tick() == {}                               # nothing free yet
    assert sorted(a.tick()) == [0]                      # sees b: hands back its excess
    assert sorted(b.tick()) == [1]                      # and b claims it
    owners = held_by(store_conn, P)
    assert {p: h for p, (h, _) in owners.items()} == {0: "member-a", 1: "member-b"}

    parts_a, parts_b = _open(store_dsn, a), _open(store_dsn, b)
    for p in [*parts_a.values(), *parts_b.values()]:
        for _ in range(5):                              # part of the way
            step(p)
    # a dies (stops renewing); once its leases expire b takes over, from a's checkpoints
    time.sleep(2.2)
    assert sorted(b.tick()) == [0, 1]
    assert all(h == "member-b" for h, _ in held_by(store_conn, P).values())
    with pytest.raises(LeaseLost):                      # a, back from a pause, is fenced off
        step(parts_a[0])
    taken = _open(store_dsn, b)
    for part, p in taken.items():
        if part in parts_b:
            p.conn.close()
            p = parts_b[part]                           # b's own, still going
        while True:
            before = p.worker.watermark_us
            step(p)
            if p.worker.watermark_us == before:
                break
    for p in [*parts_a.values(), *parts_b.values(), *taken.values()]:
        p.conn.close()

    queued = _queued(store_conn)
    assert len(queued) == len(set(queued)), "an alert event was queued twice"
    assert sorted(queued) == sorted((e.alert_id, e.revision) for e in solo)
    names = store_conn.execute("SELECT DISTINCT worker FROM anomaly_checkpoints "
                               "WHERE worker LIKE 'scaled.%' ORDER BY 1").fetchall()
    assert [n for (n,) in names] == [partition_name("scaled", i, P) for i in range(P)]


def test_a_single_worker_is_not_fenced(store_conn: psycopg.Connection[Any]) -> None:
    """Without a lease setting on its connection, the checkpoint trigger lets a write through."""
    write_fleet(store_conn)
    w = DetectWorker(store_conn, WorkerOptions(name="plain", settle_s=0, max_span_s=100), CONFIG)
    w.step()
    row = store_conn.execute("SELECT count(*) FROM anomaly_checkpoints WHERE worker = 'plain'"
                             ).fetchone()
    assert row == (1,)


def test_leave_hands_everything_back(store_dsn: str, store_conn: psycopg.Connection[Any]) -> None:
    a = _leases(store_dsn, "member-a")
    assert len(a.tick()) == P
    a.leave()
    assert all(h is None for h, _ in held_by(store_conn, P).values())
    b = _leases(store_dsn, "member-b")
    got = b.tick()
    assert sorted(got) == list(range(P))
    assert all(h.epoch == 2 for h in got.values())
