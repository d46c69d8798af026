"""Benchmark: webhook delivery from the outbox: throughput, latency, and a receiver outage.

Creates a scratch database on the PostgreSQL of ``DATABASE_URL`` (dropped afterwards), runs
the Django migrations, starts a real HTTP receiver on 127.0.0.1 (a threading ``http.server``
that checks every signature and records each ``Idempotency-Key`` with its arrival time) and
one subscribed ``WebhookEndpoint``, then measures the code the product runs
(``outbox_emit`` in a transaction, ``webhook_deliver_due`` in worker threads, as
``manage.py crm_webhooks`` does):

* **burst**: ``--burst`` events already in the outbox, drained by 1 and by ``--workers``
  workers (``SKIP LOCKED`` claims): deliveries per second;
* **steady**: ``--rate`` events a second for ``--seconds`` s, each its own transaction, while
  ``--workers`` workers poll every ``--poll-s`` s: latency from commit to the receiver;
* **outage**: the receiver answers 503 for ``--outage-s`` s while events keep coming; the
  backoff base is set to 1 s here (30 s by default) so the run is short: every event must
  still arrive once, and the time from the receiver's return to the last delivery is printed.

Each phase reports lost (never received) and duplicated (received twice) events.

    .venv/bin/python bench/bench_webhooks.py
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import django_scratch_database  # noqa: E402

SECRET = "bench-secret"  # noqa: S105 (a test receiver's key)


class Receiver:
    """An HTTP receiver: verifies signatures, records arrival per idempotency key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[str, list[float]] = {}
        self.bad_signatures = 0
        self.refusing = False
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                now = time.time()
                if receiver.refusing:
                    with receiver.lock:
                        receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                ts = self.headers.get("Aftercare-Timestamp", "")
                mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256)
                ok = hmac.compare_digest(self.headers.get("Aftercare-Signature", ""),
                                         f"v1={mac.hexdigest()}")
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    if not ok:
                        receiver.bad_signatures += 1
                    receiver.arrivals.setdefault(key, []).append(now)
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, created: dict[str, float]) -> tuple[list[float], int, int]:
        """(latencies of first arrivals, lost, duplicated) for the events ``created``."""
        with self.lock:
            lat = [self.arrivals[k][0] - t for k, t in created.items() if k in self.arrivals]
            lost = sum(1 for k in created if k not in self.arrivals)
            dup = sum(len(self.arrivals[k]) - 1 for k in created if k in self.arrivals)
        return lat, lost, dup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rate", type=float, default=20.0, help="events/s in the steady phase")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--poll-s", type=float, default=0.5,
                    help="a worker's sleep when nothing is due (crm_webhooks --every-s)")
    ap.add_argument("--outage-s", type=float, default=10.0)
    args = ap.parse_args()
    with django_scratch_database():
        return run(args)


def _emit(n: int) -> dict[str, float]:
    """``n`` events, each committed in its own transaction: {event id: commit time}."""
    from django.db import transaction
    from django.utils import timezone

    from service_crm.services.webhooks import outbox_emit

    out: dict[str, float] = {}
    for i in range(n):
        with transaction.atomic():
            ev = outbox_emit(topic="order.created", data={"order": i, "lines": [1, 2, 3]},
                             now=timezone.now())
        out[str(ev.id)] = time.time()
    return out


def _pending() -> int:
    from service_crm.models import WebhookDelivery
    from service_crm.models.choices import DeliveryStatus

    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count()


def _workers(n: int, stop: threading.Event, *, poll_s: float,
             until_empty: bool) -> list[threading.Thread]:
    from django.db import connection

    from service_crm.services.webhooks import webhook_deliver_due

    def loop() -> None:
        try:
            while not stop.is_set():
                r = webhook_deliver_due(limit=50)
                if r.delivered + r.failed + r.dead == 0:
                    if until_empty:
                        return
                    time.sleep(poll_s)
        finally:
            connection.close()

    threads = [threading.Thread(target=loop) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def _pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(xs), q)) if xs else float("nan")


def _report(name: str, recv: Receiver, created: dict[str, float]) -> tuple[int, int]:
    lat, lost, dup = recv.check(created)
    ms = [x * 1000 for x in lat]
    print(f"  {name}: {len(created)} events, lost {lost}, duplicated {dup}; latency ms "
          f"p50 {_pct(ms, 50):.0f} p95 {_pct(ms, 95):.0f} p99 {_pct(ms, 99):.0f} "
          f"max {max(ms, default=float('nan')):.0f}")
    return lost, dup


def run(args: argparse.Namespace) -> int:
    import os

    from django.conf import settings
    from django.core.management import call_command

    from service_crm.models import WebhookEndpoint

    call_command("migrate", verbosity=0)
    settings.AFTERCARE_WEBHOOK_BACKOFF_S = 1.0
    settings.AFTERCARE_WEBHOOK_MAX_ATTEMPTS = 50
    recv = Receiver()
    WebhookEndpoint.objects.create(name="bench", url=recv.url, secret=SECRET,
                                   topics=["order.created"])
    print(f"webhook delivery bench: receiver {recv.url}, load {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} CPUs")
    bad = 0

    print(f"burst: {args.burst} events queued, then drained")
    for nworkers in sorted({1, args.workers}):
        t0 = time.perf_counter()
        created = _emit(args.burst)
        emit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in _workers(nworkers, threading.Event(), poll_s=0, until_empty=True):
            t.join()
        drain_s = time.perf_counter() - t0
        print(f"  {nworkers} worker(s): emitted {args.burst / emit_s:.0f} events/s "
              f"(one transaction each), delivered {args.burst / drain_s:.0f} events/s "
              f"({drain_s:.1f} s), pending after {_pending()}")
        lost, dup = recv.check(created)[1:]
        print(f"    lost {lost}, duplicated {dup}")
        bad += lost + dup

    n = int(args.rate * args.seconds)
    print(f"steady: {args.rate:g} events/s for {args.seconds:g} s, {args.workers} workers "
          f"polling every {args.poll_s:g} s")
    stop = threading.Event()
    threads = _workers(args.workers, stop, poll_s=args.poll_s, until_empty=False)
    created = {}
    t0 = time.perf_counter()
    for i in range(n):
        created.update(_emit(1))
        time.sleep(max(0.0, t0 + (i + 1) / args.rate - time.perf_counter()))
    deadline = time.time() + 30
    while _pending() and time.time() < deadline:
        time.sleep(0.2)
    bad += sum(_report("steady", recv, created))

    print(f"outage: receiver answers 503 for {args.outage_s:g} s while {args.rate:g} "
          f"events/s go on (backoff base 1 s here, 30 s by default)")
    recv.refusing = True
    created = {}
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < args.outage_s:
        created.update(_emit(1))
        i += 1
        time.sleep(max(0.0, t0 + i / args.rate - time.perf_counter()))
    recv.refusing = False
    back = time.time()
    deadline = back + 600
    while _pending() and time.time() < deadline:
        time.sleep(0.2)
    drained = time.time() - back
    stop.set()
    for t in threads:
        t.join()
    print(f"  503 answers during the outage: {recv.refused}; all delivered "
          f"{drained:.1f} s after the receiver came back (pending {_pending()})")
    bad += sum(_report("outage", recv, created))
    print(f"bad signatures seen by the receiver: {recv.bad_signatures}")
    recv.server.shutdown()
    return 1 if bad or recv.bad_signatures else 0


if __name__ == "__main__":
    sys.exit(main())
