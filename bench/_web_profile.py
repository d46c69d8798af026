"""Where the time of each benchmarked endpoint goes: run in-process (Django test client, no
server, no concurrency) against a database kept by ``bench_web.py --keep``.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/aftercare_benchweb_xxxx \
        python bench/_web_profile.py [--n 20]

Per endpoint: mean wall time, time inside SQL, number of queries, response size; then
EXPLAIN (ANALYZE, BUFFERS) of the 30-day telemetry query and the slowest SQL statement seen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from service_crm import models as m  # noqa: E402


class Timer:
    def __init__(self) -> None:
        self.sql_s = 0.0
        self.queries = 0
        self.slowest: tuple[float, str, object] = (0.0, "", None)

    def __call__(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            d = time.perf_counter() - t
            self.sql_s += d
            self.queries += 1
            if d > self.slowest[0]:
                self.slowest = (d, sql, params)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=20)
    a = p.parse_args()
    rng = random.Random(1)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="desk"))
    accounts = list(m.Account.objects.values_list("pk", flat=True))
    assets = list(m.Asset.objects.values_list("pk", flat=True))
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    w30 = (f"start={(end - dt.timedelta(days=30)).strftime(iso)}&end={end.strftime(iso)}"
           "&resolution=1h")
    cases = {
        "dashboard": lambda: "/desk/",
        "account page": lambda: f"/desk/accounts/{rng.choice(accounts)}/",
        "asset page": lambda: f"/desk/assets/{rng.choice(assets)}/",
        "panel": lambda: "/desk/panel/",
        "telemetry 30d 1h": lambda: f"/api/v1/assets/{rng.choice(assets)}/telemetry/?{w30}",
        "chart 30d 1h cols": lambda: (f"/api/v1/assets/{rng.choice(assets)}/telemetry/?{w30}"
                                      "&layout=columns"),
        "chart 30d 6h cols": lambda: (f"/api/v1/assets/{rng.choice(assets)}/telemetry/?"
                                      f"{w30.replace('=1h', '=6h')}&layout=columns"),
        "api assets": lambda: f"/api/v1/assets/?offset={rng.randrange(0, 2000, 50)}",
        "api tickets": lambda: f"/api/v1/tickets/?offset={rng.randrange(0, 500, 50)}",
    }
    print(f"{'endpoint':18s} {'wall ms':>8s} {'sql ms':>7s} {'queries':>7s} {'KB':>6s}")
    slowest_overall: tuple[float, str, object] = (0.0, "", None)
    for name, path in cases.items():
        client.get(path())  # warm
        timer = Timer()
        size = 0
        t = time.perf_counter()
        with connection.execute_wrapper(timer):
            for _ in range(a.n):
                r = client.get(path(), HTTP_ACCEPT="application/json")
                assert r.status_code == 200, (name, r.status_code)
                size += len(r.content)
        wall = (time.perf_counter() - t) / a.n
        print(f"{name:18s} {wall * 1e3:8.1f} {timer.sql_s / a.n * 1e3:7.1f} "
              f"{timer.queries / a.n:7.1f} {size / a.n / 1024:6.0f}   slowest SQL "
              f"{timer.slowest[0] * 1e3:.1f} ms: {timer.slowest[1][:90]}")
        if timer.slowest[0] > slowest_overall[0]:
            slowest_overall = timer.slowest
    asset = m.Asset.objects.get(pk=rng.choice(assets))
    keys = list(asset.devices.values_list("device_key", flat=True))
    with connection.cursor() as cur:
        print("\nEXPLAIN telemetry 30 d / 1 h:")
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) SELECT bucket, device, metric, min, max, mean, "
                    "last, count FROM readings_1h WHERE device = ANY(%s) AND bucket >= %s AND "
                    "bucket < %s ORDER BY bucket, device, metric",
                    [keys, end - dt.timedelta(days=30), end])
        print("\n".join(r[0] for r in cur.fetchall()))
        if slowest_overall[1]:
            print(f"\nEXPLAIN slowest statement ({slowest_overall[0] * 1e3:.1f} ms):")
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest_overall[1], slowest_overall[2])
            print("\n".join(r[0] for r in cur.fetchall()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
