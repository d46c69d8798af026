"""The ``aftercare`` command: one entry point for every part, configured by environment.

Subcommands owned by a part hand their remaining arguments to that part's ``main(argv)``,
so each part's options live next to its code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aftercare import config
from aftercare.cli_args import int_in

log = logging.getLogger("aftercare")

# subcommand -> (module, function, help): parts that parse their own options.
DELEGATED: dict[str, tuple[str, str, str]] = {
    "ingest": ("ingest.worker", "main", "run one ingest worker (start several for throughput)"),
    "detect": ("anomaly.detect", "main", "run the anomaly detection worker"),
    "simulate": ("simulators.cli", "main", "run a simulated fleet (see `simulate --help`)"),
    "anomaly": ("evaluation.cli", "main", "evaluation: `anomaly nab|skab|scenarios ...`"),
    "crm-consumer": ("service_crm.adapters.consumer", "main",
                     "consume alert events into the service CRM"),
    "broker": ("aftercare_cli.broker", "main", "generate Mosquitto credentials and ACLs"),
    "demo": ("aftercare_cli.demo", "main",
             "the whole pipeline on demo data with the web app; prints the URL and logins"),
}


def _delegate(name: str, argv: list[str]) -> int:
    module_name, func_name, _ = DELEGATED[name]
    if module_name.startswith("service_crm"):
        django_setup()
    module = importlib.import_module(module_name)
    func: Callable[[list[str]], int] = getattr(module, func_name)
    return int(func(argv) or 0)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    import django

    django.setup()


def cmd_doctor(args: argparse.Namespace, settings: config.Settings) -> int:
    from aftercare_cli import doctor

    report = doctor.run(settings, broker_conf=args.broker_conf)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.render())
    return 0 if report.ok else 1


def migrate_all(settings: config.Settings, *, verbose: bool = False) -> None:
    """Create the database if missing, then migrate the store and the CRM (idempotent)."""
    import psycopg

    from aftercare import store
    from aftercare_cli.doctor import ensure_database

    created = ensure_database(settings.database_url)
    if created:
        print(f"created database {created}")
    with psycopg.connect(settings.database_url) as conn:
        info = store.migrate(
            conn,
            requested_backend=settings.store_backend,
            retention_days=settings.retention_days,
            compress_after_days=settings.compress_after_days,
            partitions_ahead_days=settings.partitions_ahead_days,
        )
    print(f"store: backend {info.backend}"
          + (f" (TimescaleDB {info.timescaledb_version})" if info.timescaledb_version else
             " (native PostgreSQL partitioning)")
          + f", schema version {info.schema_version}")
    django_setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if verbose else 0)
    call_command("createcachetable", verbosity=1 if verbose else 0)
    print("crm: migrations applied")


def cmd_db(args: argparse.Namespace, settings: config.Settings) -> int:
    import psycopg

    from aftercare import store

    if args.db_command == "migrate":
        migrate_all(settings, verbose=args.verbose)
        return 0
    if args.db_command == "maintain":
        import time

        while True:
            with psycopg.connect(settings.database_url) as conn:
                report = store.maintain(
                    conn,
                    retention_days=settings.retention_days,
                    partitions_ahead_days=settings.partitions_ahead_days,
                    run_timescale_jobs=args.run_jobs,
                )
            print(report)
            if not args.every_s:
                return 0
            time.sleep(args.every_s)
    raise AssertionError(args.db_command)


def cmd_web(args: argparse.Namespace, settings: config.Settings) -> int:
    django_setup()
    from web.server import serve
    from web.wsgi import application

    host = args.host or settings.web_host
    port = args.port or settings.web_port
    workers = settings.web_workers if args.workers is None else args.workers
    return serve(application, host=host, port=port, workers=workers)


def cmd_config(args: argparse.Namespace, settings: config.Settings) -> int:
    if args.table:
        print(config.as_table())
    else:
        for key, value in config.describe(settings).items():
            print(f"{key} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aftercare",
        description="Aftercare: telemetry to alert to ticket to work order to offer.",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("doctor", help="check the database, TimescaleDB and the broker")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--broker-conf", type=Path, default=None,
                   help="Mosquitto config to check for settings known to lose messages "
                        "(default: the one `aftercare demo` writes, if present)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("db", help="database: migrate, maintain")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("migrate", help="create or upgrade every table, view and policy")
    m = dbsub.add_parser("maintain", help="partitions ahead, retention, rollups")
    m.add_argument("--every-s", type=float, default=0, help="repeat every N seconds")
    m.add_argument("--run-jobs", action="store_true",
                   help="TimescaleDB without background workers: run the policies now")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("web", help="serve the web app")
    p.add_argument("--host", default="")
    p.add_argument("--port", type=int_in(0, 65535), default=0)
    p.add_argument("--workers", type=int_in(0, 256), default=None,
                   help="server processes (default WEB_WORKERS; 0 = one per CPU core)")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("config", help="print the effective configuration")
    p.add_argument("--table", action="store_true", help="Markdown table of every variable")
    p.set_defaults(func=cmd_config)

    for name, (_, _, help_text) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Delegated commands parse their own options (including --help).
    first = next((a for a in args_list if not a.startswith("-")), None)
    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"aftercare: configuration error: {exc}", file=sys.stderr)
        return 2
    if first in DELEGATED:
        rest = args_list[args_list.index(first) + 1:]
        try:
            return _delegate(first, rest)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in {"ingest", "anomaly", "simulators",
                                                       "service_crm", "aftercare"}:
                print(f"aftercare {first}: not available in this build ({exc.name})",
                      file=sys.stderr)
                return 2
            raise
        except config.ConfigError as exc:
            print(f"aftercare: configuration error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    result: Any = args.func(args, settings)
    return int(result)


if __name__ == "__main__":
    raise SystemExit(main())
