"""``aftercare demo``: the whole chain on demo data, on one machine, with one command.

It migrates the database, seeds the CRM with demo accounts, starts a private Mosquitto with
generated per-device credentials and ACLs (no anonymous access), then runs the simulated
fleet, one ingest worker, the anomaly worker, the CRM's alert consumer, store maintenance and
the web app as child processes, and prints the URL and the demo logins. Ctrl-C (or
``--duration-s``) stops everything. Logs go to ``$AFTERCARE_DATA_DIR/demo/*.log``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from aftercare import broker, config
from aftercare.cli_args import float_in, int_in

DEMO_ADMIN = ("admin", "aftercare-demo")
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulators" / "scenarios" / "demo.yaml"
DEMO_ASSETS = 400   # seed_demo's monitored assets: cmp/pmp/chl/cnc-0001 .. -0100


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None
    log_path: Path | None = None
    restart: str = "always"          # "always" or "on-failure" (exit 0 is the end)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    down_since: float | None = None
    backoff_s: float = 0.0


class Supervisor:
    """Runs child processes and restarts any that dies, with backoff, as systemd's
    ``Restart=always`` does in production (see deploy/systemd/): a killed ingest worker is
    back within a second or two and resumes from its spool and its broker session."""

    def __init__(self, *, backoff_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        self.children: list[Child] = []
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s

    def add(self, name: str, argv: list[str], *, env: dict[str, str] | None,
            log_path: Path | None, restart: str = "always") -> Child:
        child = Child(name, argv, env, log_path, restart)
        self.children.append(child)
        return child

    def _start(self, child: Child) -> None:
        out = child.log_path.open("ab") if child.log_path else subprocess.DEVNULL
        try:
            child.proc = subprocess.Popen(child.argv, env=child.env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if child.log_path:
                out.close()  # type: ignore[union-attr]
        child.down_since = None

    def poll(self) -> None:
        """Start what is not running yet; restart what died once its backoff has passed."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                self._start(child)
                continue
            code = child.proc.poll()
            if code is None:
                continue
            if code == 0 and child.restart == "on-failure":
                continue
            if child.down_since is None:
                child.down_since = now
                child.backoff_s = min(self.max_backoff_s,
                                      self.backoff_s * 2 ** min(child.restarts, 5))
                print(f"!! {child.name} exited with {code}; restarting in "
                      f"{child.backoff_s:.0f} s (log: {child.log_path})", file=sys.stderr,
                      flush=True)
            if now - child.down_since >= child.backoff_s:
                child.restarts += 1
                self._start(child)

    def watch(self, stop: threading.Event, every_s: float = 0.2) -> None:
        while not stop.is_set():
            self.poll()
            stop.wait(every_s)

    def stop_all(self, timeout_s: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                child.proc.kill()


def available(module: str) -> bool:
    """Whether this build has the part (``aftercare_cli.demo`` skips missing parts, and says so)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def scenario_devices(path: Path, fleet_size: int = 0) -> list[str]:
    """Device ids of the demo scenario, its fleet grown to `fleet_size` as the simulator grows
    it (they need broker credentials before they connect)."""
    if not available("simulators.scenario") or not path.is_file():
        return []
    from simulators import scenario  # type: ignore[attr-defined,unused-ignore]

    loaded = scenario.load(path).with_fleet_size(fleet_size)
    return [str(d) for d in loaded.device_ids]


def _url(user: str, password: str, port: int) -> str:
    return f"mqtt://{user}:{password}@127.0.0.1:{port}"


def _seed(settings: config.Settings) -> list[str]:
    """Seed the CRM and make sure a demo admin exists; returns the login lines to print."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command, get_commands

    lines: list[str] = []
    if "seed_demo" in get_commands():
        call_command("seed_demo", assets=DEMO_ASSETS)
        lines.append("(more demo logins are printed by seed_demo above)")
    call_command("collectstatic", interactive=False, verbosity=0)
    user_model = get_user_model()
    if not user_model.objects.filter(username=DEMO_ADMIN[0]).exists():
        user_model.objects.create_superuser(DEMO_ADMIN[0], "admin@example.invalid", DEMO_ADMIN[1])
    lines.insert(0, f"admin login: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]} (Django admin at /admin/)")
    return lines


def main(argv: list[str]) -> int:
    settings = config.load()
    p = argparse.ArgumentParser(prog="aftercare demo", description=__doc__.split("\n")[0])
    p.add_argument("--mqtt-port", type=int_in(0, 65535), default=1884,
                   help="port of the demo's own Mosquitto (0 = any free port)")
    p.add_argument("--web-port", type=int_in(1, 65535), default=settings.web_port)
    p.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    p.add_argument("--duration-s", type=float_in(0.0), default=0,
                   help="stop after N s (0 = Ctrl-C)")
    p.add_argument("--speed", type=float_in(0.0, above=True), default=1.0,
                   help="simulated time per real second")
    p.add_argument("--fleet-size", type=int_in(0), default=DEMO_ASSETS,
                   help=f"simulated devices: the scenario's, plus healthy ones of the same "
                        f"models up to this many (default {DEMO_ASSETS}: every seeded asset "
                        f"streams live telemetry)")
    p.add_argument("--device", action="append", default=[],
                   help="provision this extra device id on the demo broker (repeatable), for "
                        "publishing from your own clients")
    args = p.parse_args(argv)
    from ingest.decode import DEVICE_ID

    for device in args.device:
        if not DEVICE_ID.fullmatch(device):
            p.error(f"--device: not a valid device id (letters, digits, _ . -; 1-64): {device!r}")

    from aftercare_cli.main import django_setup, migrate_all

    data = Path(settings.data_dir).resolve() / "demo"
    data.mkdir(parents=True, exist_ok=True)
    print("== migrating", flush=True)
    migrate_all(settings)
    django_setup()
    print("== seeding demo data", flush=True)
    logins = _seed(settings)

    devices = scenario_devices(args.scenario, args.fleet_size)
    sim_devices = list(devices)
    devices += [d for d in args.device if d not in devices]
    if os.environ.get("AFTERCARE_DEVICE_SECRET"):
        device_secret = settings.device_secret
    else:
        # No secret configured: a random one for this demo, kept so restarts agree.
        secret_file = data / "device-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(24))
            secret_file.chmod(0o600)
        device_secret = secret_file.read_text().strip()
    port = args.mqtt_port or broker.free_port()
    files = broker.write_broker_files(
        data / "mosquitto", port=port, users=broker.default_users(device_secret, devices)
    )
    ingest_url = _url(broker.INGEST_USER, broker.service_password(device_secret,
                                                                  broker.INGEST_USER), port)
    service_url = _url(broker.SERVICE_USER, broker.service_password(device_secret,
                                                                    broker.SERVICE_USER), port)
    base_env = {**os.environ, "DATABASE_URL": settings.database_url,
                "AFTERCARE_DEVICE_SECRET": device_secret, "INGEST_METRICS_PORT": "0",
                "EVENTS_URL": service_url}
    exe = [sys.executable, "-m", "aftercare_cli"]
    plan: list[tuple[str, str, list[str], str]] = [
        ("ingest", "ingest.worker", ["ingest", "--client-id", "aftercare-demo-ingest"],
         ingest_url),
        ("detect", "anomaly.worker", ["detect"], service_url),
        ("crm-consumer", "service_crm.adapters.consumer", ["crm-consumer"], service_url),
        ("maintain", "aftercare.store", ["db", "maintain", "--every-s", "60"], service_url),
        ("web", "web.wsgi", ["web", "--port", str(args.web_port)], service_url),
        ("simulate", "simulators.cli",
         ["simulate", "--scenario", str(args.scenario), "--speed", str(args.speed),
          "--fleet-size", str(args.fleet_size),
          "--mqtt-url", f"mqtt://127.0.0.1:{port}"], f"mqtt://127.0.0.1:{port}"),
    ]
    sup = Supervisor()
    skipped: list[str] = []
    for name, module, cmd, mqtt_url in plan:
        if not available(module) or (name == "simulate" and not sim_devices):
            skipped.append(name)
            continue
        sup.add(name, exe + cmd, env={**base_env, "MQTT_URL": mqtt_url},
                log_path=data / f"{name}.log",
                restart="on-failure" if name == "simulate" else "always")
    children = sup.children

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with broker.run_mosquitto(files):
        sup.poll()
        url = f"http://{settings.web_host}:{args.web_port}/"
        print(f"""
== Aftercare demo is running
   web:      {url}
   broker:   mqtt://127.0.0.1:{port} (per-device credentials; config in {files.conf.parent})
   running:  {", ".join(c.name for c in children)}
   {"not in this build: " + ", ".join(skipped) if skipped else "every part is running"}
   logs:     {data}/*.log
   devices:  {len(devices)} provisioned; a device's MQTT password (user = device id):
             AFTERCARE_DEVICE_SECRET=... aftercare broker --print-password DEVICE
             (the secret is in {data}/device-secret unless you set AFTERCARE_DEVICE_SECRET)
   {chr(10).join("   " + line for line in logins).lstrip()}
   Ctrl-C stops everything.
""", flush=True)
        deadline = time.monotonic() + args.duration_s if args.duration_s else None
        try:
            while not stopping and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.5)
                sup.poll()  # a crashed or killed part comes back, with backoff
        finally:
            sup.stop_all()
    restarts = {c.name: c.restarts for c in children if c.restarts}
    print(f"== demo stopped{f' (restarts: {restarts})' if restarts else ''}", flush=True)
    return 0
