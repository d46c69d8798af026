"""Publishing to the real Mosquitto with per-device credentials, as ingest would see it."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from aftercare import broker
from simulators import scenario as scenarios
from simulators.publisher import BrokerAddress, FleetPublisher
from simulators.run import LiveRun, make_simulator
from tests.support.wait import wait_for

pytestmark = pytest.mark.broker
SECRET = "test-device-secret"
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


class Inbox:
    """What the ingest account receives on devices/+/{telemetry,status,waveform}."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        u = urlsplit(url)
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-inbox-{time.monotonic_ns()}")
        self.client.username_pw_set(u.username, u.password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.connect(u.hostname or "127.0.0.1", u.port or 1883)
        self.client.loop_start()
        assert self.ready.wait(10), "inbox could not subscribe"

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([("devices/+/telemetry", 1), ("devices/+/status", 1),
                          ("devices/+/waveform", 1)])

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:  # left over from an earlier test: not what this test sent
            return
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def on(self, suffix: str, device: str | None = None) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.messages
                    if t.endswith("/" + suffix) and (device is None or t.split("/")[1] == device)]

    def wait_for(self, predicate: Any, what: str) -> None:
        wait_for(what, predicate, timeout_s=20, interval_s=0.02)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def inbox(ingest_mqtt_url: str) -> Iterator[Inbox]:
    box = Inbox(ingest_mqtt_url)
    yield box
    box.close()


def _publisher(mosquitto: broker.BrokerFiles, ids: list[str], **kw: Any) -> FleetPublisher:
    return FleetPublisher(ids, address=BrokerAddress("127.0.0.1", mosquitto.port),
                          password_for=lambda d: broker.device_password(SECRET, d),
                          client_id_prefix=f"t{time.monotonic_ns()}-", **kw)


def _scenario(**faults: Any) -> scenarios.Scenario:
    doc: dict[str, Any] = {
        "name": "t", "seed": 5, "rate_hz": 1, "duration_s": 20,
        "fleet": [{"model": "centrifugal_pump", "ids": ["dev-000", "dev-001"]},
                  {"model": "screw_compressor", "ids": ["dev-002"], "schedule": "continuous"}],
        "faults": faults.get("faults", []),
    }
    doc.update({k: v for k, v in faults.items() if k != "faults"})
    return scenarios.parse(doc)


def test_publishes_contract_messages_per_device(mosquitto: broker.BrokerFiles,
                                                inbox: Inbox) -> None:
    sc = _scenario(waveform_interval_s=10, faults=[
        {"device": "dev-000", "fault": "bearing_wear", "onset_s": 0, "failure_s": 10,
         "params": {"trip": False}}])
    pub = _publisher(mosquitto, sc.device_ids)
    assert pub.connect() == 3
    summary = LiveRun(make_simulator(sc, START), pub, speed=0).run(duration_s=20)
    pub.close()
    inbox.wait_for(lambda: len(inbox.on("telemetry")) >= 60, "60 readings")
    assert summary.readings == 60
    for dev in sc.device_ids:
        got = [orjson.loads(p) for p in inbox.on("telemetry", dev)]
        assert [m["seq"] for m in got] == list(range(20))  # QoS 1, in order, none lost
        assert got[0]["ts"] == int(START.timestamp() * 1000)
        assert all(isinstance(v, float | int) for v in got[0]["metrics"].values())
        assert [orjson.loads(p)["state"] for p in inbox.on("status", dev)][:1] == ["online"]
    pump = orjson.loads(inbox.on("telemetry", "dev-000")[0])
    assert {"flow_l_min", "discharge_pressure_bar", "motor_current_a"} <= set(pump["metrics"])
    # Waveform bursts: the worn bearing rings louder than the healthy one.
    inbox.wait_for(lambda: len(inbox.on("waveform", "dev-001")) >= 1, "waveforms")
    worn = orjson.loads(inbox.on("waveform", "dev-000")[-1])
    ok = orjson.loads(inbox.on("waveform", "dev-001")[-1])
    assert worn["encoding"] == "f32le-base64"
    assert worn["sample_rate_hz"] == 25600

    def peak(msg: dict[str, Any]) -> float:
        return float(np.abs(np.frombuffer(base64.b64decode(msg["data"]), "<f4")).max())

    assert peak(worn) > 2 * peak(ok)


def test_buffers_while_disconnected_and_sends_a_batch(mosquitto: broker.BrokerFiles,
                                                      inbox: Inbox) -> None:
    pub = _publisher(mosquitto, ["dev-010"])
    assert pub.connect() == 1
    pub.send(0, {"ts": 1, "seq": 0, "metrics": {"temp_c": 1.0}})
    pub.drain(timeout_s=10)
    pub.drop_connection(0)  # network failure: no DISCONNECT, so the will fires
    while pub.connected_count:
        pub.service(0.01)
    for seq in range(1, 6):
        pub.send(0, {"ts": seq, "seq": seq, "metrics": {"temp_c": float(seq)}})
    assert pub.buffered_readings == 5
    assert pub.drain(timeout_s=20)
    pub.close()
    inbox.wait_for(lambda: len(inbox.on("telemetry", "dev-010")) >= 2, "the batch")
    first, batch = (orjson.loads(p) for p in inbox.on("telemetry", "dev-010")[:2])
    assert first["seq"] == 0
    assert [r["seq"] for r in batch["readings"]] == [1, 2, 3, 4, 5]
    states = [orjson.loads(p)["state"] for p in inbox.on("status", "dev-010")]
    assert states[:3] == ["online", "offline", "online"]  # the will, then back


def test_device_offline_fault_goes_silent_with_its_will(mosquitto: broker.BrokerFiles,
                                                        inbox: Inbox) -> None:
    sc = _scenario(faults=[{"device": "dev-001", "fault": "device_offline", "onset_s": 5,
                            "end_s": 12}])
    pub = _publisher(mosquitto, sc.device_ids)
    pub.connect()
    LiveRun(make_simulator(sc, START), pub, speed=0, max_chunk_steps=1).run(duration_s=20)
    pub.close()

    def seqs() -> list[int]:
        out = []
        for p in inbox.on("telemetry", "dev-001"):
            m = orjson.loads(p)
            out += [r["seq"] for r in m["readings"]] if "readings" in m else [m["seq"]]
        return out

    inbox.wait_for(lambda: len(set(seqs())) >= 13, "readings")
    # Nothing measured while switched off; what it read after power-up arrives (batched
    # while it reconnects). QoS 1 may deliver a message in flight at power-off twice.
    assert sorted(set(seqs())) == [*range(5), *range(12, 20)]
    inbox.wait_for(lambda: len(inbox.on("status", "dev-001")) >= 3, "status changes")
    states = [orjson.loads(p)["state"] for p in inbox.on("status", "dev-001")]
    assert states[:3] == ["online", "offline", "online"]


def test_misbehaving_devices_send_malformed_payloads(mosquitto: broker.BrokerFiles,
                                                     inbox: Inbox) -> None:
    sc = _scenario()
    pub = _publisher(mosquitto, sc.device_ids)
    pub.connect()
    summary = LiveRun(make_simulator(sc, START), pub, speed=0,
                      misbehave_rate=0.3).run(duration_s=20)
    pub.close()
    inbox.wait_for(lambda: len(inbox.on("telemetry")) >= 60, "all messages")

    def well_formed(p: bytes) -> bool:
        try:
            m = orjson.loads(p)
        except orjson.JSONDecodeError:
            return False
        return isinstance(m.get("ts"), int) and isinstance(m.get("metrics"), dict) and all(
            isinstance(v, float | int) and re.fullmatch(r"[a-z][a-z0-9_]{0,62}", k)
            for k, v in m["metrics"].items())

    bad = [p for p in inbox.on("telemetry") if not well_formed(p)]
    assert summary.malformed == len(bad) > 5
    assert summary.readings + summary.malformed == 60


def test_refuses_to_publish_as_another_device(mosquitto: broker.BrokerFiles) -> None:
    # The broker only knows dev-000..dev-019: an unknown device cannot log in.
    pub = _publisher(mosquitto, ["cmp-9999"])
    assert pub.connect(wait_s=1.0) == 0
    pub.close()


def test_scenario_runner_times_a_detection_from_onset(mosquitto: broker.BrokerFiles,
                                                       inbox: Inbox) -> None:
    from simulators.runner import scenario_run

    sc = _scenario(duration_s=120, faults=[
        {"device": "dev-001", "fault": "dropout", "metric": "flow_l_min", "onset_s": 20,
         "end_s": 100}])
    url = f"mqtt://127.0.0.1:{mosquitto.port}"

    def flow_missing() -> bool:  # a stand-in "detector" watching what ingest receives
        return any(orjson.loads(p)["metrics"]["flow_l_min"] is None
                   for p in inbox.on("telemetry", "dev-001"))

    with scenario_run(sc, mqtt_url=url, device_secret=SECRET, speed=40) as run:
        label = run.label("dev-001", "dropout")
        took = run.expect_within(label, within_s=60, check=flow_missing, poll_s=0.05)
        assert 0 <= took <= 60
        with pytest.raises(AssertionError, match="not seen within 5 s"):
            run.expect_within(label, within_s=5, check=lambda: False, poll_s=0.05)


def test_large_fleet_takes_turns_on_a_small_connection_pool(mosquitto: broker.BrokerFiles,
                                                            inbox: Inbox) -> None:
    sc = scenarios.parse({"name": "pool", "seed": 2, "fleet": [
        {"model": "chiller", "ids": [f"dev-{i:03d}" for i in range(11, 19)]}]})
    pub = _publisher(mosquitto, sc.device_ids, max_connections=3)
    summary = LiveRun(make_simulator(sc, START), pub, speed=0).run(duration_s=15)
    pub.close(announce_offline=False)
    assert summary.readings == 8 * 15

    def seqs(dev: str) -> set[int]:
        out: set[int] = set()
        for p in inbox.on("telemetry", dev):
            m = orjson.loads(p)
            out |= {r["seq"] for r in m["readings"]} if "readings" in m else {m["seq"]}
        return out

    inbox.wait_for(lambda: all(len(seqs(d)) == 15 for d in sc.device_ids), "every reading")
    assert pub.stats.batches_sent >= 5  # waiting devices sent what they buffered in one go


def test_buffers_until_the_broker_comes_up(tmp_path: Any) -> None:
    port = broker.free_port()
    pub = FleetPublisher(["pump-1"], address=BrokerAddress("127.0.0.1", port),
                         password_for=lambda d: broker.device_password(SECRET, d))
    assert pub.connect(wait_s=0.3) == 0  # nothing listens yet
    for seq in range(10):
        pub.send(0, {"ts": 1000 * seq, "seq": seq, "metrics": {"flow_l_min": 1.0 * seq}})
    assert pub.buffered_readings == 10
    files = broker.write_broker_files(tmp_path, port=port,
                                      users=broker.default_users(SECRET, ["pump-1"]))
    with broker.run_mosquitto(files):
        box = Inbox(f"mqtt://{broker.INGEST_USER}:"
                    f"{broker.service_password(SECRET, broker.INGEST_USER)}@127.0.0.1:{port}")
        try:
            assert pub.drain(timeout_s=30)
            box.wait_for(lambda: len(box.on("telemetry")) >= 1, "the batch")
            (batch,) = (orjson.loads(p) for p in box.on("telemetry"))
            assert [r["seq"] for r in batch["readings"]] == list(range(10))
        finally:
            pub.close()
            box.close()


def test_publish_interval_sends_each_devices_readings_as_batches(
        mosquitto: broker.BrokerFiles, inbox: Inbox) -> None:
    sc = _scenario()
    pub = _publisher(mosquitto, sc.device_ids, publish_interval_s=0.2)
    pub.connect()
    LiveRun(make_simulator(sc, START), pub, speed=20).run(duration_s=20)
    pub.close()

    def readings(dev: str) -> list[int]:
        out: list[int] = []
        for p in inbox.on("telemetry", dev):
            m = orjson.loads(p)
            out += [r["seq"] for r in m["readings"]] if "readings" in m else [m["seq"]]
        return out

    inbox.wait_for(lambda: all(len(readings(d)) == 20 for d in sc.device_ids), "all readings")
    for dev in sc.device_ids:
        assert readings(dev) == list(range(20))
        assert len(inbox.on("telemetry", dev)) < 20  # fewer messages than readings
