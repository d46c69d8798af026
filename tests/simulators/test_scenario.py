"""Scenario files: the demo, validation messages, random faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from simulators import scenario as scenarios

START = datetime(2026, 1, 5, tzinfo=UTC)


def test_demo_faults_start_within_the_first_minutes() -> None:
    sc = scenarios.load(scenarios.builtin("demo"))
    assert 20 <= len(sc.device_ids) <= 50
    assert {d.model for d in sc.devices} == {"screw_compressor", "centrifugal_pump", "chiller",
                                            "cnc_spindle"}
    onsets = [lab.onset - START for lab in sc.labels(START)]
    assert all(timedelta(minutes=2) <= o <= timedelta(minutes=5) for o in onsets)


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "x", "fleet": [{"model": "chiller", "count": 2}]}
    doc.update(over)
    return doc


@pytest.mark.parametrize(("doc", "message"), [
    (_doc(fleet=[{"model": "toaster"}]), "unknown equipment model 'toaster'"),
    (_doc(faults=[{"device": "chl-0009", "fault": "leak", "onset_s": 1}]), "not in the fleet"),
    (_doc(faults=[{"device": "chl-0001", "fault": "cavitation", "onset_s": 1}]),
     "chiller cannot have cavitation"),
    (_doc(faults=[{"device": "chl-0001", "fault": "drift", "onset_s": 1}]), "needs a metric"),
    (_doc(faults=[{"device": "chl-0001", "fault": "drift", "metric": "nope", "onset_s": 1}]),
     "no channel 'nope'"),
    (_doc(faults=[{"device": "chl-0001", "fault": "leak", "onset_s": "soon"}]),
     "expected a number"),
    (_doc(colour="red"), "unknown key 'colour'"),
])
def test_rejects_bad_scenarios_saying_where(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(scenarios.ScenarioError, match=message):
        scenarios.parse(doc, source="s.yaml")


def test_rejects_unreadable_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet: [unclosed", encoding="utf-8")
    with pytest.raises(scenarios.ScenarioError, match="not valid YAML"):
        scenarios.load(bad)


def test_random_faults_follow_the_seed() -> None:
    a = scenarios.random_fleet(40, seed=1).with_random_faults(10, window_s=3600)
    b = scenarios.random_fleet(40, seed=1).with_random_faults(10, window_s=3600)
    c = scenarios.random_fleet(40, seed=2).with_random_faults(10, window_s=3600)
    assert a.faults == b.faults
    assert a.faults != c.faults
    assert len(a.labels(START)) == 10
