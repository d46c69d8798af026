"""Scenario runner for end-to-end tests: "this fault on this asset must raise an alert
within T, and a ticket within its SLA".

The fleet runs in a background thread (accelerated by ``speed``) while the test polls
whatever it expects (an alert row, a ticket) with :meth:`ScenarioRun.expect_within`, which
measures in *simulated* time from the fault's labelled onset::

    with scenario_run(scenario, mqtt_url=url, device_secret=secret, speed=60) as run:
        label = run.label("pmp-0001", "cavitation")
        run.expect_within(label, within_s=900, check=lambda: alert_exists("pmp-0001"))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from aftercare import broker
from simulators.faults import FaultLabel
from simulators.publisher import BrokerAddress, FleetPublisher
from simulators.run import LiveRun, RunSummary, make_simulator, utc_now_s
from simulators.scenario import Scenario

__all__ = ["ScenarioRun", "scenario_run"]


class ScenarioRun:
    """A scenario running in the background; see :func:`scenario_run`."""

    def __init__(self, scenario: Scenario, live: LiveRun, labels: list[FaultLabel]) -> None:
        self.scenario = scenario
        self.live = live
        self.labels = labels
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="scenario-run", daemon=True)

    def _main(self) -> None:
        try:
            self.summary = self.live.run(duration_s=self.scenario.duration_s)
        except BaseException as exc:  # surfaced to the test by expect_within / stop
            self.error = exc
            raise

    def sim_time(self) -> datetime:
        """Simulated time the fleet has reached."""
        return self.live.sim_time()

    def label(self, device: str, fault: str) -> FaultLabel:
        """The ground-truth label of ``fault`` on ``device`` (ValueError if not scheduled)."""
        for lab in self.labels:
            if lab.device == device and lab.fault == fault:
                return lab
        raise ValueError(f"the scenario does not inject {fault} on {device}")

    def expect_within(self, label: FaultLabel, *, within_s: float, check: Callable[[], bool],
                      poll_s: float = 0.2) -> float:
        """Wait until ``check()`` is true; fail if simulated time passes onset + ``within_s``.

        Returns the simulated seconds from onset to the first true ``check()``.
        """
        deadline = label.onset + timedelta(seconds=within_s)
        while True:
            if self.error is not None:
                raise RuntimeError("the scenario run failed") from self.error
            now = self.sim_time()
            if check():
                return max(0.0, (now - label.onset).total_seconds())
            if now > deadline or not self._thread.is_alive():
                raise AssertionError(
                    f"{label.fault} on {label.device}: not seen within {within_s:.0f} s of "
                    f"onset {label.onset.isoformat()} (simulated time now {now.isoformat()})"
                )
            time.sleep(poll_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        self.live.stop_event.set()
        self._thread.join(timeout_s)
        self.live.publisher.close()


@contextmanager
def scenario_run(scenario: Scenario, *, mqtt_url: str, device_secret: str,
                 speed: float = 60.0, start: datetime | None = None,
                 misbehave_rate: float = 0.0) -> Iterator[ScenarioRun]:
    """Run ``scenario`` against the broker for the duration of the block."""
    begin = start or utc_now_s()
    publisher = FleetPublisher(
        scenario.device_ids, address=BrokerAddress.from_url(mqtt_url),
        password_for=lambda d: broker.device_password(device_secret, d),
    )
    publisher.connect()
    live = LiveRun(make_simulator(scenario, begin), publisher, speed=speed,
                   misbehave_rate=misbehave_rate)
    run = ScenarioRun(scenario, live, scenario.labels(begin))
    run.start()
    try:
        yield run
    finally:
        run.stop()
