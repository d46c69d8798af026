"""Ground truth out: the injected faults to a labels file and to the ``fault_labels`` table.

The generator is driven by the same :class:`~simulators.faults.FaultLabel` objects it writes
here, so the labels are what was injected by construction.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from simulators.faults import FaultLabel

__all__ = ["labels_to_db", "labels_to_file", "labels_from_db"]

_COLUMNS = ("run_id", "scenario", "device", "fault", "kind", "metric", "onset", "failure_at",
            "end_at", "params")


def labels_to_file(path: str | Path, labels: Sequence[FaultLabel], *, run_id: str,
                   scenario: str) -> Path:
    """Write labels as CSV (``.csv``) or JSON (anything else); returns the path."""
    p = Path(path)
    rows = [{"run_id": run_id, "scenario": scenario, **lab.as_dict()} for lab in labels]
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".csv":
        with p.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(_COLUMNS))
            w.writeheader()
            for r in rows:
                w.writerow({**r, "params": json.dumps(r["params"], sort_keys=True)})
    else:
        p.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return p


def labels_to_db(conn: psycopg.Connection[Any], labels: Sequence[FaultLabel], *, run_id: str,
                 scenario: str) -> int:
    """Insert labels into ``fault_labels`` (idempotent per run); returns rows inserted.

    Commits, unless the caller already has a transaction open (then it is a savepoint).
    """
    with conn.transaction(), conn.cursor() as cur:
        if cur.execute("SELECT to_regclass('fault_labels')").fetchone() == (None,):
            raise RuntimeError("table fault_labels is missing: run `aftercare db migrate` first")
        cur.executemany(
            f"INSERT INTO fault_labels ({', '.join(_COLUMNS)}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (run_id, device, fault, onset) DO NOTHING",
            [(run_id, scenario, lab.device, lab.fault, lab.kind, lab.metric, lab.onset,
              lab.failure_at, lab.end_at, Jsonb(lab.params)) for lab in labels],
        )
        return max(cur.rowcount, 0)


def labels_from_db(conn: psycopg.Connection[Any], *, run_id: str) -> list[FaultLabel]:
    """The labels stored for one run, in onset order."""
    rows = conn.execute(
        "SELECT device, fault, onset, failure_at, end_at, metric, params FROM fault_labels "
        "WHERE run_id = %s ORDER BY onset, device, fault", (run_id,)
    ).fetchall()
    return [FaultLabel(r[0], r[1], r[2], failure_at=r[3], end_at=r[4], metric=r[5],
                       params=dict(r[6])) for r in rows]
