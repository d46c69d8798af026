"""For the service CRM tests: alert events as the anomaly worker publishes them, for the
world's compressor (``tests.support.world``), and running calls at once."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection

from aftercare.events import AlertEvent, Evidence
from tests.support.world import NOW

_ids = itertools.count(1)


def race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call at once, each in its own thread with its own database connection
    (released together by a barrier); return each call's result or the exception it raised,
    in the calls' order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as the outcome
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def make_event(device: str = "cmp-n1", *, alert_id: str | None = None, revision: int = 1,
               state: str = "open", severity: str = "warning",
               failure_mode: str = "bearing_wear", at: dt.datetime = NOW,
               detector: str = "zscore") -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id or f"a-{next(_ids)}", revision=revision, state=state,  # type: ignore[arg-type]
        device=device, kind="equipment", severity=severity,  # type: ignore[arg-type]
        failure_mode=failure_mode, score=0.9, opened_at=at, at=at,
        evidence=(Evidence(metric="vibration_rms_mm_s", detector=detector, score=0.9,
                           value=7.1, baseline=2.8),),
        detectors={detector: 0.9},
    )
