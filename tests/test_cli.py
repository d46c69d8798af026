"""The `aftercare` command: configuration errors, doctor, config table, broker files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aftercare import broker, config
from tests.support.services import DEVICE_SECRET, mqtt_url_for


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aftercare_cli", *args],
                          env={**os.environ, "INGEST_METRICS_PORT": "0", **env},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("name", "value"), [
    ("DATABASE_URL", "mysql://x"), ("WEB_PORT", "http"), ("INGEST_BATCH_SIZE", "-5"),
    ("AFTERCARE_STORE_BACKEND", "influx"), ("MQTT_URL", "http://broker"),
    ("DJANGO_DEBUG", "maybe"), ("EVENTS_URL", "kafka://x"),
])
def test_bad_configuration_stops_startup_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(config.ConfigError, match=name):
        config.load({name: value})
    result = run("doctor", **{name: value})
    assert result.returncode == 2
    assert name in result.stderr


def test_config_table_lists_every_variable_with_its_default() -> None:
    table = run("config", "--table").stdout
    for var in config.VARIABLES:
        assert f"| `{var.name}` | `{var.default}` |" in table


@pytest.mark.db
@pytest.mark.broker
def test_doctor_checks_database_backend_and_broker(
    store_dsn: str, mosquitto: broker.BrokerFiles
) -> None:
    url = mqtt_url_for(mosquitto, broker.SERVICE_USER,
                       broker.service_password(DEVICE_SECRET, broker.SERVICE_USER))
    result = run("doctor", "--json", DATABASE_URL=store_dsn, MQTT_URL=url)
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    checks = {c["name"]: c for c in report["checks"]}
    assert "native PostgreSQL partitioning" in checks["store backend"]["detail"]
    assert "not installed on this server" in checks["timescaledb"]["detail"]
    assert checks["broker"]["ok"]

    wrong = mqtt_url_for(mosquitto, broker.SERVICE_USER, "wrong-password")
    result = run("doctor", DATABASE_URL=store_dsn, MQTT_URL=wrong)
    assert result.returncode == 1
    assert "FAIL broker" in result.stdout
    assert "wrong-password" not in result.stdout  # secrets are redacted


@pytest.mark.slow  # runs the command in a subprocess
def test_broker_command_writes_per_device_credentials_and_acl(tmp_path: Path) -> None:
    result = run("broker", "--out", str(tmp_path), "--no-registry", "--device", "pump-7",
                 "--port", "18830")
    assert result.returncode == 0, result.stderr
    users = {line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()}
    assert users == {"pump-7", broker.INGEST_USER, broker.SERVICE_USER}
    assert "pattern write devices/%u/telemetry" in (tmp_path / "acl").read_text()
    assert "allow_anonymous false" in (tmp_path / "mosquitto.conf").read_text()
    bad = run("broker", "--out", str(tmp_path), "--no-registry", "--device", "a/b")
    assert bad.returncode == 2
    assert "--device" in bad.stderr


@pytest.mark.db
@pytest.mark.timescale
def test_doctor_reports_the_timescaledb_backend(timescale_store_dsn: str) -> None:
    result = run("doctor", "--json", DATABASE_URL=timescale_store_dsn,
                 MQTT_URL="mqtt://127.0.0.1:1")
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["store backend"]["ok"]
    assert checks["store backend"]["detail"].startswith("TimescaleDB 2.")
    assert "installed" in checks["timescaledb"]["detail"]
    assert not checks["broker"]["ok"]  # nothing listens on port 1: reported, not crashed


def test_readme_lists_every_variable() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert config.as_table() in readme, "regenerate the table with `aftercare config --table`"


def test_doctor_warns_about_a_broker_queue_that_loses_messages(tmp_path: Path) -> None:
    from aftercare_cli import doctor

    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 1883\npersistence true\n")  # the default queue: 1000
    report = doctor.Report()
    doctor.check_broker_setup(report, conf)
    assert report.checks[0].warning
    assert "max_queued_messages 1000" in report.checks[0].detail
    conf.write_text("persistence true\nmax_queued_messages 1000000\n")
    report = doctor.Report()
    doctor.check_broker_setup(report, conf)
    assert not report.checks[0].warning
    assert report.checks[0].ok
