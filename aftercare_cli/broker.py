"""``aftercare broker``: generate Mosquitto's password file and ACL from the device registry.

Devices come from the store's ``devices`` table (every device ever provisioned or seen) plus
any named with ``--device``; each gets its own password, derived from
``AFTERCARE_DEVICE_SECRET`` so provisioning tools can hand it to the device. The ACL lets a
device publish only under ``devices/{its id}/...``; the ingest and service accounts get their
own rights. No anonymous access. Reload Mosquitto (SIGHUP) after regenerating.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from aftercare import broker, config
from aftercare.store import devices as store_devices
from ingest.decode import DEVICE_ID


def registry_devices(database_url: str) -> list[str]:
    """Device ids in the registry, without those in the service accounts' namespace: such a row
    gets no credentials (it is named on stderr) and does not stop the others'."""
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        keys = store_devices.device_keys(conn)
    for key in keys:
        if broker.device_id_reserved(key):
            print(f"skipped registry device {key!r}: the name is reserved for Aftercare's "
                  "service accounts", file=sys.stderr)
    return [k for k in keys if not broker.device_id_reserved(k)]


def main(argv: list[str]) -> int:
    settings = config.load()
    p = argparse.ArgumentParser(prog="aftercare broker", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(settings.data_dir) / "mosquitto",
                   help="directory for mosquitto.conf, passwd and acl")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--host", default="127.0.0.1", help="listener address")
    p.add_argument("--device", action="append", default=[], help="also provision this device")
    p.add_argument("--no-registry", action="store_true",
                   help="only the --device ids, without reading the database")
    p.add_argument("--print-password", metavar="DEVICE",
                   help="print one device's MQTT password and exit")
    args = p.parse_args(argv)
    for flag, ids in (("--device", args.device),
                      ("--print-password", [args.print_password] if args.print_password else [])):
        bad = [d for d in ids if not DEVICE_ID.fullmatch(d)]
        if bad:
            p.error(f"{flag}: not a valid device id (letters, digits, _ . -; 1-64): {bad[0]!r}")
        reserved = [d for d in ids if broker.device_id_reserved(d)]
        if reserved:
            p.error(f"{flag}: {reserved[0]!r} is reserved for Aftercare's service accounts "
                    f"(device ids may not start with {broker.RESERVED_PREFIX!r})")
    if args.print_password:
        print(broker.device_password(settings.device_secret, args.print_password))
        return 0
    devices = sorted(set(args.device) | set(() if args.no_registry
                                             else registry_devices(settings.database_url)))
    files = broker.write_broker_files(args.out, port=args.port, host=args.host,
                                      users=broker.default_users(settings.device_secret, devices))
    print(f"wrote {files.conf}, {files.passwd} ({len(devices)} devices + ingest and service "
          f"accounts) and {files.acl}")
    print(f"run: mosquitto -c {files.conf}")
    return 0
