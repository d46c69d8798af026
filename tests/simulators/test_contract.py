"""What the simulator sends decodes under ingest's contract checks; misbehaving payloads do not."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from ingest.decode import decode_status, decode_telemetry, decode_waveform
from simulators import scenario as scenarios
from simulators.publisher import status_payload
from simulators.run import MALFORMED, group_messages, group_waveforms, make_simulator

START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
NOW_US = int(START.timestamp() * 1e6) + 3_600 * 10**6


def test_demo_telemetry_and_waveforms_decode_without_rejects() -> None:
    sc = scenarios.load(scenarios.builtin("demo"))
    sim = make_simulator(sc, START)
    sim.generate(400)  # past every demo onset
    chunk = sim.generate(120)
    n_readings = n_waves = 0
    for g, state in zip(chunk.groups, sim.groups, strict=True):
        for _, d, obj in group_messages(g, chunk.t_us, chunk.step0):
            topic = f"devices/{g.device_ids[d]}/telemetry"
            single = decode_telemetry(topic, orjson.dumps(obj), now_us=NOW_US)
            assert single.reject is None, single.reject
            n_readings += 1
        for _, d, payload in group_waveforms(g, chunk.t_us, state.key):
            wave = decode_waveform(f"devices/{g.device_ids[d]}/waveform", payload,
                                   now_us=NOW_US)
            assert len(wave.samples) == 4096 * 4
            n_waves += 1
    assert n_readings > 20 * 100
    assert n_waves >= 20


def test_batch_payload_decodes_every_reading() -> None:
    sim = make_simulator(scenarios.random_fleet(1), START)
    chunk = sim.generate(30)
    g = chunk.groups[0]
    batch = {"readings": [obj for _, _, obj in group_messages(g, chunk.t_us, 0)]}
    decoded = decode_telemetry("devices/pmp-0001/telemetry", orjson.dumps(batch), now_us=NOW_US)
    assert decoded.reject is None
    assert len(decoded.metric) == 30 * len(g.model.metric_names)


def test_status_and_will_decode() -> None:
    assert decode_status("devices/pmp-0001/status", status_payload("offline", 1),
                         now_us=NOW_US).state == "offline"


@pytest.mark.parametrize("payload", MALFORMED)
def test_every_malformed_payload_is_rejected_by_ingest(payload: bytes) -> None:
    decoded = decode_telemetry("devices/pmp-0001/telemetry", payload, now_us=NOW_US)
    assert decoded.reject is not None
    assert not decoded.metric
