"""Subscriber side of bench/bench_ingest.py, run as its own process.

``count``: a bare paho MQTT 5 QoS 1 subscriber that only counts (paho acks after the callback).
``naive``: the naive bridge, one autocommit ``INSERT`` per reading into ``telemetry`` from the
paho callback, device and metric ids resolved (and created) like the ingest writer does.

Protocol on stdout, one line each: ``ready`` after the SUBACK, ``p COUNT`` every 0.25 s, and
``done COUNT T_FIRST T_LAST CPU_S`` (``time.monotonic()``, shared by all processes on Linux)
once ``--expect`` messages have arrived.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from aftercare.mqtt import endpoint, make_client


class NaiveBridge:
    """One autocommit INSERT per reading, ids cached per name as the writer does."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(dsn, autocommit=True)
        self.devices: dict[str, int] = {}
        self.metrics: dict[str, int] = {}

    def _id(self, table: str, column: str, name: str, known: dict[str, int]) -> int:
        if name not in known:
            self.conn.execute(f"INSERT INTO {table} ({column}) VALUES (%s) ON CONFLICT DO NOTHING",
                              (name,))
            row = self.conn.execute(f"SELECT id FROM {table} WHERE {column} = %s",
                                    (name,)).fetchone()
            assert row is not None
            known[name] = int(row[0])
        return known[name]

    def handle(self, topic: str, payload: bytes) -> None:
        device = topic.split("/")[1]
        doc = orjson.loads(payload)
        t = datetime.fromisoformat(doc["ts"]).astimezone(UTC)
        dev_id = self._id("devices", "device_key", device, self.devices)
        for name, value in doc["metrics"].items():
            self.conn.execute(
                "INSERT INTO telemetry (time, device_id, metric_id, value) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (t, dev_id, self._id("metrics", "name", name, self.metrics), value),
            )


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=("count", "naive"), required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--dsn", default="")
    args = p.parse_args()

    bridge = NaiveBridge(args.dsn) if args.mode == "naive" else None
    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    ready = threading.Event()

    def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            print(f"error connect {rc}", flush=True)
            done.set()
            return
        c.subscribe(args.topic, options=SubscribeOptions(qos=1))

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, props: Any) -> None:
        ready.set()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if bridge is not None:
            bridge.handle(msg.topic, msg.payload)
        n = state["n"] = state["n"] + 1
        if n == 1:
            state["first"] = time.monotonic()
        if n == args.expect:
            state["last"] = time.monotonic()
            done.set()

    client = make_client(args.url, f"bench-{args.mode}-{time.monotonic_ns()}")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    ep = endpoint(args.url)
    client.connect(ep.host, ep.port, keepalive=60)
    client.loop_start()
    try:
        if not ready.wait(15):
            print("error no SUBACK", flush=True)
            return 1
        print("ready", flush=True)
        while not done.wait(0.25):
            print(f"p {state['n']}", flush=True)
        cpu = time.process_time()
        print(f"done {state['n']} {state['first']:.6f} {state['last']:.6f} {cpu:.3f}", flush=True)
        # Wait for the harness to stop us, so it can read /proc for peak memory.
        sys.stdin.read()
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the harness cleans up
        raise SystemExit(130) from None
