"""``aftercare detect``: one anomaly worker (:mod:`anomaly.worker`) over every device, or, with
``--partitions P``, the partitions this process holds leases on (:mod:`anomaly.leases`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from anomaly.leases import run_partitioned
from anomaly.worker import WorkerOptions, run


def main(argv: list[str]) -> int:
    """Run the anomaly worker until interrupted (or, with ``--once``, until caught up)."""
    from aftercare import config
    from aftercare.cli_args import float_in, int_in

    p = argparse.ArgumentParser(prog="aftercare detect",
                                description=__doc__.replace("``", "").split("\n\n")[0])
    p.add_argument("--name", default="default", help="worker name (checkpoint key)")
    p.add_argument("--settle-s", type=float_in(0.0), default=30.0,
                   help="analyse only up to now() minus this (late ingest commits)")
    p.add_argument("--step-s", type=float_in(0.0, above=True), default=1.0,
                   help="time grid of the detector arrays")
    p.add_argument("--poll-s", type=float_in(0.0, above=True), default=2.0,
                   help="pause when caught up")
    p.add_argument("--once", action="store_true", help="stop when caught up")
    p.add_argument("--reload-s", type=float_in(0.0), default=10.0,
                   help="how often to look for edited equipment profiles in the CRM")
    p.add_argument("--partitions", type=int_in(1, 4096), default=1,
                   help="split the devices into this many partitions leased among every "
                        "`aftercare detect` started with the same number (anomaly/leases.py)")
    p.add_argument("--lease-ttl-s", type=float_in(0.0, above=True), default=15.0,
                   help="with --partitions: a dead worker's partitions are taken over after "
                        "at most this plus a fifth of it")
    p.add_argument("--learn-unknown-s", type=float_in(0.0), default=None,
                   help="how long a channel no equipment profile describes learns its normal "
                        "behaviour before it may alert (default: a day, 86400)")
    args = p.parse_args(argv)
    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    options = WorkerOptions(name=args.name, settle_s=args.settle_s, step_s=args.step_s,
                            reload_s=args.reload_s, learn_unknown_s=args.learn_unknown_s)
    if args.partitions > 1:
        asyncio.run(run_partitioned(settings.database_url, settings.events_url, options,
                                    partitions=args.partitions, ttl_s=args.lease_ttl_s,
                                    renew_s=args.lease_ttl_s / 5, poll_s=args.poll_s))
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings.database_url, settings.events_url, options, once=args.once,
                        poll_s=args.poll_s))
    return 0
