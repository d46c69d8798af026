"""`aftercare anomaly scenarios`: the worker's bank over generated scenario data, scored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from evaluation.cli import main
from evaluation.evaluate import START, Alert, evaluate, score
from simulators.faults import FaultLabel
from simulators.scenario import parse

# Three pumps for two hours: a bearing wears out on one, another's flow sensor freezes.
SMALL = {
    "name": "small", "seed": 3, "rate_hz": 1, "duration_s": 7200,
    "fleet": [{"model": "centrifugal_pump", "count": 3, "schedule": "continuous"}],
    "faults": [
        {"device": "pmp-0001", "fault": "bearing_wear", "onset_s": 900, "failure_s": 5400,
         "end_s": 6600},
        {"device": "pmp-0002", "fault": "stuck_value", "metric": "vibration_rms_mm_s",
         "onset_s": 1800, "end_s": 4000},
    ],
}


def test_small_scenario_is_alerted_before_failure_and_the_sensor_is_a_device_problem() -> None:
    s = evaluate(parse(SMALL), duration_s=7200)
    assert s.modes["bearing_wear"].alerted == 1
    assert s.modes["bearing_wear"].median_lead_s > 600
    assert s.wrong_mode == 0
    assert (s.device_faults, s.device_faults_seen, s.device_as_equipment) == (1, 1, 0)
    assert s.false_alerts == 0
    # pmp-0001 until onset and after repair + 300 s grace, pmp-0002 likewise, pmp-0003 all along.
    assert s.healthy_device_days == pytest.approx((900 + 300 + 1800 + 2900 + 7200) / 86400)


def test_scoring_by_hand() -> None:
    labels = [
        FaultLabel("a", "leak", START + timedelta(seconds=100),
                   failure_at=START + timedelta(seconds=1000)),
        FaultLabel("b", "leak", START + timedelta(seconds=100),
                   failure_at=START + timedelta(seconds=1000)),
        FaultLabel("c", "spikes", START + timedelta(seconds=100),
                   end_at=START + timedelta(seconds=200), metric="flow_l_min"),
    ]
    alerts = [
        Alert("a", "equipment", "bearing_wear", 400.0),   # in time, wrong mode
        Alert("b", "equipment", "leak", 1200.0),          # after failure: missed
        Alert("c", "device", "sensor spikes", 150.0),     # right
        Alert("c", "equipment", "leak", 180.0),           # device fault as equipment
        Alert("d", "equipment", "leak", 50.0),            # healthy device: false
        Alert("c", "equipment", "leak", 900.0),           # after repair + grace: false
    ]
    s = score(labels, ["a", "b", "c", "d"], alerts, duration_s=86400.0, grace_s=300.0)
    assert (s.modes["leak"].faults, s.modes["leak"].alerted) == (2, 1)
    assert s.modes["leak"].median_lead_s == 600.0
    assert s.wrong_mode == 1
    assert (s.device_faults, s.device_faults_seen, s.device_as_equipment) == (1, 1, 1)
    assert s.false_alerts == 2
    # a and b are faulty from 100 s to the end; c from 100 s to 200 s + grace; d all day.
    assert s.healthy_device_days == pytest.approx((100 + 100 + (86400 - 400) + 86400) / 86400)


def test_cli_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 1800}))
    assert main(["scenarios", "--scenario", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bearing_wear" in out
    assert "per 100 device-days" in out
    assert main(["scenarios", "--scenario", str(tmp_path / "missing.yaml")]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["scenarios", "--scenario", str(path), "--days", "0"])
    assert exit_.value.code == 2
    assert "argument --days: must be above 0, got 0" in capsys.readouterr().err


def test_fleet_size_adds_healthy_device_days(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from evaluation.evaluate import run_files

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 1800}))
    three = run_files([path], days=None)
    six = run_files([path], days=None, fleet_size=6)
    # Three more devices, healthy for the whole 1800 s: 3 x 1800 / 86400 = 0.0625 days more.
    assert six.healthy_device_days - three.healthy_device_days == pytest.approx(0.0625)
    assert six.equipment_faults == three.equipment_faults
    assert main(["scenarios", "--scenario", str(path), "--fleet-size", "6"]) == 0
    assert "per 100 device-days" in capsys.readouterr().out


def test_seed_shift_scores_other_data_with_the_same_faults(tmp_path: Path) -> None:
    import yaml

    from evaluation.evaluate import run_files

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 7200}))
    same = run_files([path], days=None)
    moved = run_files([path], days=None, seed_shift=1000)
    assert moved.equipment_faults == same.equipment_faults
    assert [a.opened_s for a in moved.alerts] != [a.opened_s for a in same.alerts]


def test_history_moves_the_faults_later_and_adds_healthy_time(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    import yaml

    from evaluation.evaluate import run_files

    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 1800}))
    plain = run_files([path], days=None)
    later = run_files([path], days=None, history_s=3600.0)
    # The same faults, an hour into the machines' lives: three devices an hour healthier.
    assert later.equipment_faults == plain.equipment_faults
    assert later.healthy_device_days - plain.healthy_device_days == pytest.approx(
        3 * 3600 / 86400)
    assert main(["scenarios", "--scenario", str(path), "--history-days", "0.01"]) == 0
    assert "0.01 d of history before the faults" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["scenarios", "--scenario", str(path), "--history-days", "-1"])
    assert exit_.value.code == 2
    with pytest.raises(ValueError, match="history"):
        parse(SMALL).with_history(-1.0)


def test_slower_faults_develop_later_and_the_run_grows_to_match(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    s = parse(SMALL).slowed(3.0)
    wear, stuck = s.faults
    assert (wear.onset_s, wear.failure_s, wear.end_s) == (900.0, 900 + 3 * 4500, 900 + 3 * 5700)
    assert (stuck.onset_s, stuck.end_s) == (1800.0, 1800 + 3 * 2200)
    assert s.duration_s == 7200 + 2 * 5700            # the longest fault's added time
    drift = parse({**SMALL, "faults": [{"device": "pmp-0001", "fault": "drift",
                                        "metric": "discharge_pressure_bar", "onset_s": 60,
                                        "end_s": 660, "params": {"rate_per_h": 3.0}}]})
    assert drift.slowed(2.0).faults[0].params == {"rate_per_h": 1.5}
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="slow-down factor must be a number > 0"):
            parse(SMALL).slowed(bad)
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 1800,
                                    "faults": SMALL["faults"][1:]}))
    assert main(["scenarios", "--scenario", str(path), "--slower", "1.5"]) == 0
    assert "faults 1.5x slower" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["scenarios", "--scenario", str(path), "--slower", "0"])
    assert exit_.value.code == 2
    assert "argument --slower: must be above 0, got 0" in capsys.readouterr().err


def test_every_machine_can_run_on_another_schedule(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    s = parse(SMALL)
    assert {d.schedule for d in s.with_schedule("two_shift").devices} == {"two_shift"}
    assert s.with_schedule("two_shift").faults == s.faults
    with pytest.raises(ValueError, match="unknown schedule 'weekends'"):
        s.with_schedule("weekends")
    # One shift (07:00-16:00 UTC, the run starts on a Monday at 00:00): the pumps are stopped
    # through a two-hour run, so the bearing wear has nothing to show and nothing is alerted.
    stopped = evaluate(s.with_schedule("one_shift"), duration_s=7200)
    assert stopped.modes["bearing_wear"].alerted == 0
    assert stopped.false_alerts == 0
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "duration_s": 1800, "faults": SMALL["faults"][1:]}))
    assert main(["scenarios", "--scenario", str(path), "--schedule", "two_shift"]) == 0
    assert "every machine on two_shift" in capsys.readouterr().out
    assert main(["scenarios", "--scenario", str(path), "--schedule", "weekends"]) == 2
    assert "unknown schedule 'weekends'" in capsys.readouterr().err
