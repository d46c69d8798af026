"""Ground truth and backfill in the real store; the CLI end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from aftercare import broker
from simulators import cli
from simulators import scenario as scenarios
from simulators.labels import labels_from_db, labels_to_db, labels_to_file
from simulators.run import backfill, make_simulator

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@pytest.mark.db
def test_labels_round_trip_through_the_store(store_conn: psycopg.Connection[Any]) -> None:
    sc = scenarios.load(scenarios.builtin("demo"))
    labels = sc.labels(START)
    assert labels_to_db(store_conn, labels, run_id="r1", scenario=sc.name) == len(labels)
    assert labels_to_db(store_conn, labels, run_id="r1", scenario=sc.name) == 0  # idempotent
    back = labels_from_db(store_conn, run_id="r1")
    key = lambda lab: (lab.onset, lab.device, lab.fault)  # noqa: E731
    assert sorted(back, key=key) == sorted(labels, key=key)
    kinds = dict(store_conn.execute(
        "SELECT fault, kind FROM fault_labels WHERE run_id = 'r1'").fetchall())
    assert kinds["bearing_wear"] == "equipment"
    assert kinds["stuck_value"] == "device"
    assert kinds["device_offline"] == "device"


def test_labels_file_csv_and_json(tmp_path: Path) -> None:
    labels = scenarios.load(scenarios.builtin("demo")).labels(START)
    rows = json.loads(labels_to_file(tmp_path / "l.json", labels, run_id="r", scenario="demo")
                      .read_text())
    assert rows[0]["device"] == "cmp-0001"
    assert rows[0]["onset"] == "2026-01-05T06:02:00Z"
    csv_text = labels_to_file(tmp_path / "l.csv", labels, run_id="r", scenario="demo").read_text()
    assert csv_text.splitlines()[0].startswith("run_id,scenario,device,fault,kind,metric,onset")
    assert len(csv_text.splitlines()) == len(labels) + 1


@pytest.mark.db
def test_backfill_writes_every_value_to_the_store(store_conn: psycopg.Connection[Any]) -> None:
    sc = scenarios.parse({"name": "b", "seed": 3, "fleet": [
        {"model": "chiller", "ids": ["c1"]}, {"model": "cnc_spindle", "ids": ["s1"]}],
        "faults": [{"device": "c1", "fault": "dropout", "metric": "chw_supply_temp_c",
                    "onset_s": 100, "end_s": 200}]})
    res = backfill(make_simulator(sc, START), store_conn, steps=600, chunk_steps=250,
                   progress=False)
    assert res.rows == 600 * (11 + 10)
    expected = make_simulator(sc, START).generate(600).groups
    chiller = next(g for g in expected if g.device_ids == ("c1",))
    got = store_conn.execute(
        "SELECT value FROM readings WHERE device = 'c1' AND metric = 'chw_supply_temp_c' "
        "ORDER BY time").fetchall()
    values = np.array([np.nan if v is None else v for (v,) in got])
    np.testing.assert_array_equal(values, chiller.values[:, 0, 0])
    assert np.isnan(values[100:200]).all()  # dropout stored as NULL ("no reading")


@pytest.mark.db
@pytest.mark.broker
def test_cli_runs_a_scenario_and_records_ground_truth(
    tmp_path: Path, store_dsn: str, mosquitto: broker.BrokerFiles
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: cli\nseed: 9\nduration_s: 30\n"
        "fleet:\n  - {model: centrifugal_pump, ids: [pump-1, pump-2]}\n"
        "faults:\n  - {device: pump-1, fault: cavitation, onset_s: 10}\n",
        encoding="utf-8",
    )
    labels = tmp_path / "labels.json"
    rc = cli.main(["--scenario", str(scenario), "--speed", "0", "--faults", "leak",
                   "--mqtt-url", f"mqtt://127.0.0.1:{mosquitto.port}",
                   "--device-secret", "test-device-secret", "--database-url", store_dsn,
                   "--labels", str(labels), "-q"])
    assert rc == 0
    written = json.loads(labels.read_text())
    assert [r["fault"] for r in written] == ["cavitation", "leak"]
    with psycopg.connect(store_dsn) as conn:
        stored = conn.execute("SELECT device, fault FROM fault_labels ORDER BY onset").fetchall()
    assert sorted(stored) == sorted((r["device"], r["fault"]) for r in written)


def test_cli_lists_demo_devices(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--scenario", "demo", "--list-devices"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids == scenarios.load(scenarios.builtin("demo")).device_ids
    assert {i.split("-")[0] for i in ids} == {"cmp", "pmp", "chl", "cnc"}


def test_cli_grows_the_scenario_fleet_with_healthy_devices(
        capsys: pytest.CaptureFixture[str]) -> None:
    demo = scenarios.load(scenarios.builtin("demo"))
    assert cli.main(["--scenario", "demo", "--fleet-size", "400", "--list-devices"]) == 0
    ids = capsys.readouterr().out.split()
    assert len(ids) == len(set(ids)) == 400
    assert ids[:len(demo.device_ids)] == demo.device_ids
    # The same ids seed_demo links to its 400 assets: cmp/pmp/chl/cnc-0001 .. -0100.
    assert sorted(ids) == sorted(f"{p}-{k:04d}" for p in ("cmp", "pmp", "chl", "cnc")
                                 for k in range(1, 101))
    grown = demo.with_fleet_size(400)
    assert grown.faults == demo.faults
    assert demo.with_fleet_size(3) == demo
    assert cli.main(["--devices", "3", "--fleet-size", "9", "--list-devices"]) == 2
    assert "--fleet-size" in capsys.readouterr().err


def test_cli_rejects_unknown_fault(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--devices", "3", "--faults", "gremlins", "--list-devices"]) == 2
    assert "unknown fault 'gremlins'" in capsys.readouterr().err


@pytest.mark.db
def test_labels_migration_is_idempotent(store_conn: psycopg.Connection[Any]) -> None:
    sql = (Path(__file__).resolve().parents[2] / "aftercare/store/sql/0010_simulator.sql")
    store_conn.execute(sql.read_text(encoding="utf-8").encode())  # already applied once
    assert store_conn.execute("SELECT count(*) FROM fault_labels").fetchone() == (0,)


@pytest.mark.db
def test_cli_backfills_history_into_the_store(tmp_path: Path, store_dsn: str) -> None:
    rc = cli.main(["--scenario", "pump-leak", "--backfill-days", "0.005", "--faults", "0",
                   "--database-url", store_dsn, "-q"])
    assert rc == 0
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute("SELECT device, count(*) FROM readings GROUP BY 1 ORDER BY 1"
                            ).fetchall()
        labels = conn.execute("SELECT device, fault FROM fault_labels").fetchall()
    assert rows == [(f"pmp-000{i}", 432 * 10) for i in (1, 2, 3)]  # 0.005 d = 432 s, 10 metrics
    assert labels == [("pmp-0001", "leak")]
