"""A device can never take a service account's identity: ids in the ``aftercare...`` namespace
are refused by the broker files, ``aftercare broker``, the registry read, the claim service,
the model (admin) and the API, and the service accounts keep their own passwords."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from django.core.exceptions import ValidationError

from aftercare import broker
from aftercare_cli import broker as broker_cli
from service_crm import models as m
from service_crm.services.devices import device_claim
from tests import factories as f
from tests.factories import store_device
from tests.support.wait import wait_for
from tests.support.world import NOW, World

SECRET = "reserved-test-secret"
RESERVED = ["aftercare-service", "aftercare-ingest", "AFTERCARE-SERVICE", "aftercare_x",
            "Aftercare.new-service"]


def _connack(port: int, user: str, password: str) -> Any:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    done = threading.Event()
    result: list[Any] = []

    def on_connect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        result.append(rc)
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def _attacker_password(device_id: str) -> str:
    """What the device password of ``device_id`` was before names were reserved."""
    return hmac.new(SECRET.encode(), device_id.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize("device_id", RESERVED)
def test_reserved_ids_get_no_device_credentials(device_id: str) -> None:
    assert broker.device_id_reserved(device_id)
    with pytest.raises(broker.ReservedDeviceId, match="reserved"):
        broker.device_password(SECRET, device_id)
    with pytest.raises(broker.ReservedDeviceId):
        broker.default_users(SECRET, ["pump-1", device_id])


def test_every_service_account_is_in_the_reserved_namespace() -> None:
    for user in broker.SERVICE_USERS:
        assert broker.device_id_reserved(user)
    with pytest.raises(ValueError, match="not an Aftercare service account"):
        broker.service_password(SECRET, "pump-1")


def test_device_and_service_passwords_come_from_separate_inputs() -> None:
    users = broker.default_users(SECRET, ["pump-1", "service-aftercare"])
    assert users[broker.SERVICE_USER] == broker.service_password(SECRET, broker.SERVICE_USER)
    assert users[broker.SERVICE_USER] != _attacker_password(broker.SERVICE_USER)
    assert users["pump-1"] == broker.device_password(SECRET, "pump-1")


@pytest.mark.parametrize("flag", ["--device", "--print-password"])
def test_broker_command_refuses_a_reserved_device(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        broker_cli.main(["--out", str(tmp_path), "--no-registry", flag, "aftercare-service"])
    assert exit_.value.code == 2
    assert "reserved for Aftercare's service accounts" in capsys.readouterr().err
    assert not (tmp_path / "passwd").exists()


@pytest.mark.db
@pytest.mark.broker
def test_reserved_registry_row_cannot_take_over_the_service_accounts(
        store_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The reproduction of the probe: a registry row named like a service account used to
    replace that account's password file entry with the device's password and rights."""
    with psycopg.connect(store_dsn) as conn:
        for key in ("aftercare-service", "aftercare-ingest", "pump-9"):
            conn.execute("INSERT INTO devices (device_key, last_seen, state) "
                         "VALUES (%s, now(), 'online')", [key])
    devices = broker_cli.registry_devices(store_dsn)
    assert devices == ["pump-9"]
    assert "skipped registry device 'aftercare-service'" in capsys.readouterr().err
    files = broker.write_broker_files(tmp_path, port=broker.free_port(),
                                      users=broker.default_users(SECRET, devices),
                                      persistence=False)
    with broker.run_mosquitto(files):
        for user in broker.SERVICE_USERS:
            assert not _connack(files.port, user, broker.service_password(SECRET, user)).is_failure
            assert _connack(files.port, user, _attacker_password(user)).is_failure
        assert not _connack(files.port, "pump-9",
                            broker.device_password(SECRET, "pump-9")).is_failure


@pytest.mark.db
@pytest.mark.django_db
def test_claim_refuses_a_reserved_device_id(world: World) -> None:
    store_device("aftercare-service")
    agent = f.UserFactory(username="dora", is_superuser=True)
    spare = f.AssetFactory(site=world.site, equipment_model=world.asset.equipment_model)
    with pytest.raises(ValidationError) as err:
        device_claim(device_key="aftercare-service", asset=spare, actor=agent, now=NOW)
    assert "reserved" in " ".join(err.value.message_dict["device_key"])
    assert not m.DeviceLink.objects.filter(device_key="aftercare-service").exists()


@pytest.mark.db
@pytest.mark.django_db
def test_device_link_refuses_a_reserved_id_in_full_clean(world: World) -> None:
    link = m.DeviceLink(asset=world.asset, device_key="aftercare-ingest")
    with pytest.raises(ValidationError) as err:
        link.full_clean()
    assert "device_key" in err.value.message_dict


def _publish(port: int, user: str, password: str, topic: str) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b'{"ts": 0, "metrics": {"temp_c": 1}}', qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.mark.broker
def test_a_service_account_cannot_publish_as_a_device_of_its_name(tmp_path: Path) -> None:
    """The device patterns apply to every user; the ACL denies each service account its own
    device tree, so nothing ever arrives (or is registered) under a reserved id."""
    files = broker.write_broker_files(tmp_path, port=broker.free_port(), persistence=False,
                                      users=broker.default_users(SECRET, ["pump-9"]))
    received: list[str] = []
    subscribed = threading.Event()
    with broker.run_mosquitto(files):
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.username_pw_set(broker.INGEST_USER,
                            broker.service_password(SECRET, broker.INGEST_USER))
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("devices/+/telemetry", qos=1)
        sub.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
        sub.on_message = lambda c, u, msg: received.append(msg.topic)
        sub.connect("127.0.0.1", files.port)
        sub.loop_start()
        try:
            assert subscribed.wait(10)
            for user in broker.SERVICE_USERS:
                _publish(files.port, user, broker.service_password(SECRET, user),
                         f"devices/{user}/telemetry")
            _publish(files.port, "pump-9", broker.device_password(SECRET, "pump-9"),
                     "devices/pump-9/telemetry")
            wait_for("the honest message", lambda: "devices/pump-9/telemetry" in received, 10)
            time.sleep(0.5)  # a forged message sent before the honest one has arrived by now
        finally:
            sub.loop_stop()
            sub.disconnect()
    assert received == ["devices/pump-9/telemetry"]
