"""Helpers shared by the anomaly worker's tests."""

from __future__ import annotations

from aftercare.events import AlertEvent
from anomaly.worker import DetectWorker


def run_until_caught_up(worker: DetectWorker) -> list[AlertEvent]:
    """Step the worker until its watermark stops moving; every event it queued, in order."""
    events: list[AlertEvent] = []
    while True:
        before = worker.watermark_us
        events += worker.step()
        if worker.watermark_us == before:
            return events
