"""``aftercare simulate``: run a simulated fleet live, accelerated, or as backfill.

Examples::

    aftercare simulate --scenario demo                      # the demo fleet, real time
    aftercare simulate --devices 1000 --faults 20 --speed 10 --duration-s 3600
    aftercare simulate --scenario pump-cavitation --backfill-days 30   # history to the store
    aftercare simulate --scenario demo --list-devices       # ids to provision credentials
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from aftercare import broker, config
from simulators import scenario as scenarios
from simulators.faults import FAULT_KIND
from simulators.labels import labels_to_db, labels_to_file
from simulators.publisher import BrokerAddress, FleetPublisher
from simulators.run import LiveRun, backfill, make_simulator, new_run_id, utc_now_s

log = logging.getLogger(__name__)


def _parser(settings: config.Settings) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aftercare simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", help="scenario YAML file, or a built-in name ("
                   + ", ".join(n for n in scenarios.builtin_names() if "-" not in n)
                   + ", <model>-<fault>, ...)")
    p.add_argument("--devices", type=int, help="without --scenario: fleet size (default 10)")
    p.add_argument("--rate-hz", type=float, help="readings per device per simulated second")
    p.add_argument("--faults", default="0",
                   help="extra random faults: a count, or comma-separated fault names "
                        f"(one each; known: {', '.join(FAULT_KIND)})")
    p.add_argument("--seed", type=int, help="same seed, same data")
    p.add_argument("--duration-s", type=float,
                   help="simulated seconds to run live (default: scenario's, else forever)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per wall second; 0 = as fast as possible")
    p.add_argument("--backfill-days", type=float, default=0.0,
                   help="first write this much history straight to the store")
    p.add_argument("--mqtt-url", default=settings.mqtt_url, help="broker (default: MQTT_URL)")
    p.add_argument("--database-url", default=settings.database_url,
                   help="store for backfill and labels (default: DATABASE_URL)")
    p.add_argument("--device-secret", default=settings.device_secret,
                   help="derives each device's MQTT password (default: AFTERCARE_DEVICE_SECRET)")
    p.add_argument("--labels", type=Path, help="write ground truth here (.csv or .json)")
    p.add_argument("--no-labels-db", action="store_true",
                   help="do not write ground truth to the fault_labels table")
    p.add_argument("--misbehave-rate", type=float, default=0.0,
                   help="fraction of telemetry messages sent malformed (reliability tests)")
    p.add_argument("--max-connections", type=int, default=2000,
                   help="devices connected at once; larger fleets take turns and send batches")
    p.add_argument("--publish-interval-s", type=float, default=0.0,
                   help="each device sends its readings as one batch payload this often (wall "
                        "seconds); 0 = every reading at once. ~10 for 10k devices at 1 Hz")
    p.add_argument("--fleet-size", type=int, default=None,
                   help="with --scenario: grow its fleet to this many devices (more of the same "
                        "models, healthy; the scenario's faults unchanged)")
    p.add_argument("--list-devices", action="store_true",
                   help="print the fleet's device ids and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return p


def build_scenario(args: argparse.Namespace) -> scenarios.Scenario:
    """The scenario the options describe (ScenarioError on bad options)."""
    if args.scenario and args.devices is not None:
        raise scenarios.ScenarioError("give --scenario or --devices, not both")
    if args.scenario:
        path = Path(args.scenario)
        sc = scenarios.load(path if path.suffix in {".yaml", ".yml"} or path.exists()
                            else scenarios.builtin(args.scenario))
    else:
        sc = scenarios.random_fleet(args.devices if args.devices is not None else 10)
    sc = sc.with_options(seed=args.seed, rate_hz=args.rate_hz, duration_s=args.duration_s)
    if args.fleet_size is not None:
        if not args.scenario:
            raise scenarios.ScenarioError("--fleet-size grows a --scenario's fleet; "
                                          "without one, use --devices")
        sc = sc.with_fleet_size(args.fleet_size)
    if sc.rate_hz <= 0:
        raise scenarios.ScenarioError("--rate-hz must be > 0")
    spec = str(args.faults).strip()
    window = (sc.duration_s or 3600.0) + args.backfill_days * 86400.0
    if spec.isdigit():
        return sc.with_random_faults(int(spec), window_s=window)
    names = tuple(n.strip() for n in spec.split(",") if n.strip())
    unknown = [n for n in names if n not in FAULT_KIND]
    if unknown:
        raise scenarios.ScenarioError(
            f"--faults: unknown fault {unknown[0]!r}; known: {', '.join(FAULT_KIND)}")
    for name in names:
        sc = sc.with_random_faults(1, kinds=(name,), window_s=window)
    return sc


def main(argv: list[str]) -> int:
    settings = config.load()
    args = _parser(settings).parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sc = build_scenario(args)
        address = BrokerAddress.from_url(args.mqtt_url)
    except ValueError as exc:
        print(f"aftercare simulate: {exc}", file=sys.stderr)
        return 2
    if args.list_devices:
        print("\n".join(sc.device_ids))
        return 0

    now = utc_now_s()
    start = now - timedelta(days=args.backfill_days)
    sim = make_simulator(sc, start)
    labels = sc.labels(start)
    run_id = new_run_id(sc, start)
    if args.labels:
        labels_to_file(args.labels, labels, run_id=run_id, scenario=sc.name)
    conn: psycopg.Connection[Any] | None = None
    if args.backfill_days > 0 or not args.no_labels_db:
        try:
            conn = psycopg.connect(args.database_url, connect_timeout=10)
        except psycopg.OperationalError as exc:
            print(f"aftercare simulate: store unreachable at DATABASE_URL ({exc}); "
                  "use --no-labels-db to run without it", file=sys.stderr)
            return 1
    try:
        if conn is not None and not args.no_labels_db:
            labels_to_db(conn, labels, run_id=run_id, scenario=sc.name)
            conn.commit()
        log.info("run %s: %d devices, %d faults", run_id, len(sc.device_ids), len(labels))
        if args.backfill_days > 0 and conn is not None:
            steps = int(round(args.backfill_days * 86400 * sc.rate_hz))
            result = backfill(sim, conn, steps=steps, progress=not args.quiet)
            log.info("backfill: %d rows in %.1f s", result.rows, result.wall_s)
            if args.duration_s is None:
                return 0
    finally:
        if conn is not None:
            conn.close()

    publisher = FleetPublisher(
        sc.device_ids, address=address, max_connections=args.max_connections,
        publish_interval_s=args.publish_interval_s,
        password_for=lambda dev: broker.device_password(args.device_secret, dev),
    )
    live = LiveRun(sim, publisher, speed=args.speed, misbehave_rate=args.misbehave_rate)

    def stop(signum: int, frame: FrameType | None) -> None:
        live.stop_event.set()

    # Ctrl-C / SIGTERM end the run cleanly (offline status, buffers drained); handlers can
    # only be set from the main thread, and are put back afterwards.
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        if publisher.connect(wait_s=10.0) == 0:
            log.warning("no device could connect to %s:%d yet; buffering until it is "
                        "reachable", address.host, address.port)
        summary = live.run(duration_s=sc.duration_s)
    finally:
        publisher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    st = publisher.stats
    log.info("published %d messages (%d readings, %d batches, %d waveforms, %d malformed) "
             "in %.1f s", st.published, summary.readings, st.batches_sent, summary.waveforms,
             summary.malformed, summary.wall_s)
    return 0
