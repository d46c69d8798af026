"""Web benchmark: desk pages and API under load, over a seeded book and a telemetry backfill.

    python bench/bench_web.py [--accounts 100 --assets 10000 --readings 100000000] [--quick]

1. Creates a scratch database ``aftercare_benchweb_<random>`` (dropped on exit, Ctrl-C
   included, unless ``--keep``), migrates it (``aftercare db migrate``), seeds accounts and
   assets (``bench/_web_seed.py``: ``seed_demo`` plus bulk-created assets and some tickets),
   backfills ``--readings`` readings over ``--days`` days straight into the store with
   ``ingest.writer.write_columns`` (binary COPY, one batch per day and device slice,
   ``--writers`` connections in parallel), then refreshes the rollups (``aftercare db
   maintain``) and ANALYZEs.
2. Starts ``aftercare web`` (waitress) on a free port, logs in as the demo desk user (session
   cookie) and gets an API token, then load-tests each endpoint with ``wrk`` (a separate
   process; Lua script sets the Cookie or Authorization header and picks a random account or
   asset per request) at each ``--connections`` level. Prints p50/p95/p99 and requests/s per
   endpoint and writes them as JSON (``--out``). Target: p95 <= 200 ms.

Needs ``wrk`` on PATH (Debian: ``apt-get install -y wrk``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.writer import write_columns  # noqa: E402

BASE_URL = os.environ.get("AFTERCARE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
TARGET_P95_MS = 200.0
DESK_USER, DESK_PASSWORD = "desk", "desk-demo"  # seed_demo's demo login (Service desk)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aftercare_bin() -> str:
    exe = Path(sys.executable).with_name("aftercare")
    return str(exe) if exe.exists() else "aftercare"


# --- backfill -------------------------------------------------------------------------------

def backfill(url: str, devices: list[tuple[str, list[str]]], *, readings: int, days: int,
             writers: int, seed: int, end: dt.datetime) -> dict[str, float]:
    """``readings`` rows spread evenly over every (device, metric) pair and ``days`` days
    before ``end``: each pair gets one reading every ``step`` seconds from a random phase.
    Written one UTC day at a time (split into slices of at most ~1 M rows), rows sorted by
    (device, metric, time) so the unique index is filled in order."""
    pairs_dev = np.array([d for d, ms in devices for _ in ms], dtype=object)
    pairs_met = np.array([mt for _, ms in devices for mt in ms], dtype=object)
    order = np.lexsort((pairs_met.astype(str), pairs_dev.astype(str)))
    pairs_dev, pairs_met = pairs_dev[order], pairs_met[order]
    n_pairs = len(pairs_dev)
    per_pair = max(1, readings // n_pairs)
    span_us = days * 86_400_000_000
    step_us = span_us // per_pair
    start_us = int(end.timestamp() * 1e6) - span_us
    rng = np.random.default_rng(seed)
    phase = rng.integers(0, step_us, size=n_pairs, dtype=np.int64)
    base = rng.uniform(1.0, 80.0, size=n_pairs)
    day_us = 86_400_000_000
    first_day = start_us // day_us
    last_day = (start_us + span_us - 1) // day_us
    jobs: list[tuple[int, int, int]] = []  # day start, pair lo, pair hi
    rows_per_day = per_pair * n_pairs * day_us / span_us
    slices = max(1, int(np.ceil(rows_per_day / 1_000_000)))
    bounds = np.linspace(0, n_pairs, slices + 1).astype(int)
    for day in range(first_day, last_day + 1):
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            jobs.append((day * day_us, int(lo), int(hi)))
    total = per_pair * n_pairs

    def batch(day0: int, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        ph = phase[lo:hi]
        # k-th reading of a pair is at start + phase + k * step; keep those inside the day.
        a = np.maximum(day0, start_us) - start_us - ph
        k_lo = np.clip(-(-a // step_us), 0, per_pair)
        b = min(day0 + day_us, start_us + span_us) - start_us - ph
        k_hi = np.clip(-(-b // step_us), 0, per_pair)
        cnt = np.maximum(k_hi - k_lo, 0)
        n = int(cnt.sum())
        idx = np.repeat(np.arange(lo, hi), cnt)
        offs = np.arange(n) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.repeat(k_lo, cnt) + offs
        t = start_us + phase[idx] + k * step_us
        v = base[idx] * (1 + 0.05 * np.sin(t / 3.6e9)) + rng_local().normal(0, 0.5, n)
        return pairs_dev[idx], pairs_met[idx], t, v

    local = threading.local()

    def rng_local() -> np.random.Generator:
        if not hasattr(local, "rng"):
            local.rng = np.random.default_rng(seed + threading.get_ident() % 1000)
        return local.rng

    def conn() -> psycopg.Connection[Any]:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(url)
            conns.append(local.conn)
        return local.conn

    conns: list[psycopg.Connection[Any]] = []
    bar = tqdm(total=total, unit="rows", unit_scale=True, desc="backfill", smoothing=0.1)
    lock = threading.Lock()
    stored = 0

    def run(job: tuple[int, int, int]) -> None:
        nonlocal stored
        dev, met, t, v = batch(*job)
        if len(t) == 0:
            return
        res = write_columns(conn(), device=dev, metric=met, time=t, value=v)
        with lock:
            stored += res.stored
            bar.update(len(t))

    t0 = time.perf_counter()
    try:
        # The first day alone: every device and metric gets its id in name order.
        run(jobs[0])
        pool = ThreadPoolExecutor(max_workers=writers)
        try:
            for fut in [pool.submit(run, j) for j in jobs[1:]]:
                fut.result()
        finally:  # on Ctrl-C, drop the queued batches rather than write them
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
        for c in conns:
            c.close()
    secs = time.perf_counter() - t0
    return {"rows": stored, "seconds": secs, "rows_per_s": stored / secs,
            "per_pair": per_pair, "step_s": step_us / 1e6, "pairs": n_pairs}


# --- web: login and load --------------------------------------------------------------------

def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aftercare web exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (http only)
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def login(base: str) -> tuple[str, str]:
    """Session cookie header value (desk user, through the log-in form) and an API token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    html = opener.open(base + "/login/").read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise RuntimeError("no CSRF token on /login/")
    body = urllib.parse.urlencode({"csrfmiddlewaretoken": match.group(1), "username": DESK_USER,
                                   "password": DESK_PASSWORD, "next": "/desk/"}).encode()
    req = urllib.request.Request(base + "/login/", data=body,  # noqa: S310
                                 headers={"Referer": base + "/login/"})
    resp = opener.open(req)
    if not resp.geturl().rstrip("/").endswith("/desk"):
        raise RuntimeError(f"log-in did not land on the desk: {resp.geturl()}")
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    req = urllib.request.Request(  # noqa: S310
        base + "/api/v1/token/", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": DESK_USER, "password": DESK_PASSWORD}).encode())
    token = json.loads(urllib.request.urlopen(req).read())["token"]  # noqa: S310
    return cookie, token


LUA = r"""
local paths = {%(paths)s}
local hdr = {%(headers)s}
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], hdr)
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "bytes": %%d, "p50_us": %%d, ' ..
    '"p95_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f, "errors": %%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(base: str, paths: list[str], headers: dict[str, str], *, connections: int,
            duration: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"wrk_{secrets.token_hex(3)}.lua"
    script.write_text(LUA % {
        "paths": ", ".join(lua_str(p) for p in paths),
        "headers": ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()),
        "seed": 7})
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
         "-s", str(script), base], capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r = json.loads(line[len("RESULT "):])
    secs = r["duration_us"] / 1e6
    return {"requests": r["requests"], "rps": r["requests"] / secs,
            "p50_ms": r["p50_us"] / 1e3, "p95_ms": r["p95_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "max_ms": r["max_us"] / 1e3,
            "kb_per_req": r["bytes"] / max(1, r["requests"]) / 1024, "errors": r["errors"]}


def check_paths(base: str, paths: list[str], headers: dict[str, str]) -> int:
    """Fetch the first path once (fail early on a 4xx/5xx) and return its size."""
    req = urllib.request.Request(base + paths[0], headers=headers)  # noqa: S310
    with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
        return len(r.read())


def object_ids(url: str, limit: int = 50) -> dict[str, list[int]]:
    """Up to ``limit`` ids of the seeded work orders, episodes, offers and tickets (their
    pages are load-tested too)."""
    tables = {"work_orders": "service_crm_workorder", "episodes": "service_crm_episode",
              "offers": "service_crm_offer", "tickets": "service_crm_ticket"}
    with psycopg.connect(url) as c:
        return {k: [r[0] for r in c.execute(
            f"SELECT id FROM {t} ORDER BY id DESC LIMIT %s", (limit,))]  # noqa: S608
            for k, t in tables.items()}


def endpoints(seeded: dict[str, Any], *, cookie: str, token: str, end: dt.datetime,
              sample: int, seed: int, ids: dict[str, list[int]] | None = None,
              ) -> list[tuple[str, list[str], dict[str, str]]]:
    rng = np.random.default_rng(seed)
    ids = ids or {}
    accounts = [pk for pk, _ in seeded["accounts"]]
    assets = [int(x) for x in rng.choice(seeded["assets"], size=min(sample, len(
        seeded["assets"])), replace=False)]
    iso = "%Y-%m-%dT%H:%M:%SZ"
    end_s = end.strftime(iso)
    w30 = f"start={(end - dt.timedelta(days=30)).strftime(iso)}&end={end_s}&resolution=1h"
    w24 = f"start={(end - dt.timedelta(hours=24)).strftime(iso)}&end={end_s}&resolution=1m"
    sess = {"Cookie": cookie}
    sess_json = {"Cookie": cookie, "Accept": "application/json"}
    tok = {"Authorization": f"Token {token}", "Accept": "application/json"}
    return [
        ("desk dashboard /desk/", ["/desk/"], sess),
        ("dashboard panel /desk/panel/ (polled)", ["/desk/panel/"], sess),
        ("account page /desk/accounts/<id>/", [f"/desk/accounts/{a}/" for a in accounts], sess),
        ("asset page /desk/assets/<id>/", [f"/desk/assets/{a}/" for a in assets], sess),
        ("asset telemetry 30 d, 1 h, rows (API row format)",
         [f"/api/v1/assets/{a}/telemetry/?{w30}" for a in assets], sess_json),
        ("asset chart 30 d, 1 h, columns (the chart's request)",
         [f"/api/v1/assets/{a}/telemetry/?{w30}&layout=columns" for a in assets], sess_json),
        ("asset chart 30 d, 6 h, columns",
         [f"/api/v1/assets/{a}/telemetry/?{w30.replace('=1h', '=6h')}&layout=columns"
          for a in assets], sess_json),
        ("asset chart 24 h, 1 m, columns (page default)",
         [f"/api/v1/assets/{a}/telemetry/?{w24}&layout=columns" for a in assets], sess_json),
        ("API /api/v1/assets/ (50 per page)", ["/api/v1/assets/"] + [
            f"/api/v1/assets/?offset={o}" for o in range(50, 2000, 50)], tok),
        ("API /api/v1/tickets/ (50 per page)", ["/api/v1/tickets/"] + [
            f"/api/v1/tickets/?offset={o}" for o in range(50, 500, 50)], tok),
        ("API /api/v1/accounts/ (health worked out per page)", ["/api/v1/accounts/"], tok),
        ("dispatch board /desk/dispatch/ (week)", ["/desk/dispatch/",
                                                   "/desk/dispatch/?view=day"], sess),
        ("ticket list /desk/tickets/ sorted", ["/desk/tickets/?sort=account",
                                               "/desk/tickets/?sort=-opened"], sess),
        ("alerts /desk/alerts/", ["/desk/alerts/"], sess),
        ("asset list /desk/assets/ (search by serial)",
         ["/desk/assets/", "/desk/assets/?q=CMP-20", "/desk/assets/?q=PMP"], sess),
        ("global search /desk/search/?q=", [f"/desk/search/?q={q}" for q in (
            "CMP-20", "kompressor", "T-", "pmp-00", "GmbH")], sess),
        ("episodes /desk/episodes/", ["/desk/episodes/"], sess),
        ("offers /desk/offers/", ["/desk/offers/"], sess),
        ("renewals /desk/renewals/", ["/desk/renewals/"], sess),
        ("reports /desk/reports/", ["/desk/reports/"], sess),
        ("operations /desk/operations/", ["/desk/operations/"], sess),
        ("tasks /desk/tasks/", ["/desk/tasks/"], sess),
        ("opportunities + forecast", ["/desk/opportunities/",
                                      "/desk/opportunities/forecast/"], sess),
        ("data quality /desk/data/quality/", ["/desk/data/quality/"], sess),
        ("account timeline /desk/accounts/<id>/timeline/",
         [f"/desk/accounts/{a}/timeline/" for a in accounts], sess),
        *[(f"{label} page /desk/{part}/<id>/", [f"/desk/{part}/{pk}/" for pk in ids[key]], sess)
          for label, part, key in (("ticket", "tickets", "tickets"),
                                   ("work-order", "work-orders", "work_orders"),
                                   ("episode", "episodes", "episodes"),
                                   ("offer", "offers", "offers")) if ids.get(key)],
    ]


def load_test(args: argparse.Namespace, env: dict[str, str], url: str, workdir: Path,
              seeded: dict[str, Any], end: dt.datetime, report: dict[str, Any]) -> int:
    """Start ``aftercare web`` on a free port and run wrk against every endpoint."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [aftercare_bin(), "web", "--host", "127.0.0.1", "--port", str(port)]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    # Its own process group, so stopping it stops its worker processes too.
    web = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=open(workdir / "web.log", "wb"),  # noqa: SIM115
                           start_new_session=True)
    try:
        wait_http(base + "/healthz", 60, web)
        cookie, token = login(base)
        results = []
        report["loadavg_before"] = os.getloadavg()
        for label, paths, headers in endpoints(seeded, cookie=cookie, token=token, end=end,
                                               sample=args.sample, seed=args.seed,
                                               ids=object_ids(url)):
            size = check_paths(base, paths, headers)
            for conns in [int(x) for x in args.connections.split(",")]:
                r = run_wrk(base, paths, headers, connections=conns, duration=args.duration,
                            workdir=workdir)
                r.update(endpoint=label, connections=conns, first_response_kb=size / 1024,
                         loadavg_1m=os.getloadavg()[0])
                results.append(r)
                print(f"{label:55s} c={conns:<3d} {r['rps']:7.1f} req/s  p50 "
                      f"{r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  p99 "
                      f"{r['p99_ms']:7.1f} ms  errors {r['errors']}  load "
                      f"{r['loadavg_1m']:.1f}", flush=True)
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
    report["results"] = results
    report["loadavg"] = os.getloadavg()

    print("\n| endpoint | conns | req/s | p50 ms | p95 ms | p99 ms | KB/resp | load 1m "
          "| p95 <= 200 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        ok = "yes" if r["p95_ms"] <= TARGET_P95_MS and not r["errors"] else "**no**"
        print(f"| {r['endpoint']} | {r['connections']} | {r['rps']:.1f} | "
              f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['kb_per_req']:.0f} | {r['loadavg_1m']:.1f} | {ok} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"\nfigures written to {args.out}")
    return 0


# --- main -----------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--assets", type=int, default=10_000)
    p.add_argument("--readings", type=int, default=100_000_000)
    p.add_argument("--days", type=int, default=30, help="backfill span, ending now (30)")
    p.add_argument("--tickets", type=int, default=None, help="phone tickets (5 per account)")
    p.add_argument("--writers", type=int, default=2, help="backfill connections (2)")
    p.add_argument("--connections", default="1,8",
                   help="wrk connection counts to measure, comma-separated (1,8)")
    p.add_argument("--duration", type=int, default=20, help="seconds per wrk run (20)")
    p.add_argument("--sample", type=int, default=500, help="assets the asset runs rotate over")
    p.add_argument("--quick", action="store_true",
                   help="20 accounts, 1,000 assets, 1 M readings, 5 s runs")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument("--prepare-only", action="store_true",
                   help="seed, backfill and refresh, then stop (implies --keep)")
    p.add_argument("--reuse", metavar="DB",
                   help="load-test a database kept by an earlier --keep/--prepare-only run")
    p.add_argument("--workers", type=int, default=None,
                   help="aftercare web --workers (default: the server's own default)")
    p.add_argument("--out", default=str(ROOT / "test-artifacts" / "bench_web.json"))
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    if args.quick:
        args.accounts, args.assets, args.readings, args.duration = 20, 1000, 1_000_000, 5
    if args.tickets is None:
        args.tickets = args.accounts * 5
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    if args.prepare_only or args.reuse:
        args.keep = True

    name = args.reuse or f"aftercare_benchweb_{secrets.token_hex(4)}"
    url = f"{BASE_URL}/{name}"
    if not args.reuse:
        with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        print(f"scratch database {name}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_web_"))
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(40), "AFTERCARE_DATA_DIR": str(workdir),
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "WEB_HOST": "127.0.0.1",
           "AFTERCARE_STORE_BACKEND": "auto", "PYTHONPATH": str(ROOT)}
    report: dict[str, Any] = {"database": name, "args": vars(args)}
    try:
        t = time.perf_counter()
        subprocess.run([aftercare_bin(), "db", "migrate"], env=env, check=True, cwd=ROOT)
        report["migrate_s"] = time.perf_counter() - t
        if args.reuse:
            with psycopg.connect(url) as c:
                row = c.execute("SELECT doc FROM bench_web_prepared").fetchone()
            if row is None:
                raise RuntimeError(f"{name} was not prepared by bench_web.py")
            prepared = row[0]
            seeded, end = prepared["seeded"], dt.datetime.fromisoformat(prepared["end"])
            report.update(prepared["report"])
            return load_test(args, env, url, workdir, seeded, end, report)

        t = time.perf_counter()
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "_web_seed.py"),
                              "--accounts", str(args.accounts), "--assets", str(args.assets),
                              "--tickets", str(args.tickets), "--seed", str(args.seed)],
                             env=env, check=True, cwd=ROOT, stdout=subprocess.PIPE,
                             text=True).stdout
        seeded = json.loads(out.strip().splitlines()[-1])
        report["seed_s"] = time.perf_counter() - t
        report["counts"] = seeded["counts"]
        print(f"seeded {seeded['counts']} in {report['seed_s']:.0f} s", flush=True)

        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        report["backfill"] = backfill(url, [(d, ms) for d, ms in seeded["devices"]],
                                      readings=args.readings, days=args.days,
                                      writers=args.writers, seed=args.seed, end=end)
        b = report["backfill"]
        print(f"backfill: {b['rows']:,} rows in {b['seconds']:.0f} s "
              f"({b['rows_per_s']:,.0f} rows/s; {b['pairs']:,} device-metric pairs, one "
              f"reading every {b['step_s']:.0f} s each)", flush=True)

        t = time.perf_counter()
        subprocess.run([aftercare_bin(), "db", "maintain"], env=env, check=True, cwd=ROOT)
        report["maintain_s"] = time.perf_counter() - t
        t = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("ANALYZE")
            sizes = c.execute(
                "SELECT (SELECT count(*) FROM telemetry_1m), (SELECT count(*) FROM telemetry_1h),"
                " pg_database_size(current_database())").fetchone()
        assert sizes is not None
        report["analyze_s"] = time.perf_counter() - t
        report["rollup_rows"] = {"1m": sizes[0], "1h": sizes[1]}
        report["database_bytes"] = sizes[2]
        print(f"rollups refreshed in {report['maintain_s']:.0f} s (1m rows {sizes[0]:,}, "
              f"1h rows {sizes[1]:,}); ANALYZE {report['analyze_s']:.0f} s; database "
              f"{sizes[2] / 2**30:.1f} GiB", flush=True)

        with psycopg.connect(url) as c:
            c.execute("CREATE TABLE IF NOT EXISTS bench_web_prepared (doc jsonb NOT NULL)")
            c.execute("DELETE FROM bench_web_prepared")
            c.execute("INSERT INTO bench_web_prepared (doc) VALUES (%s)", (Jsonb(
                {"seeded": seeded, "end": end.isoformat(), "report": report}),))
        if args.prepare_only:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).with_suffix(".prepare.json").write_text(
                json.dumps(report, indent=2, default=str))
            print(f"prepared; load-test with --reuse {name}")
            return 0
        return load_test(args, env, url, workdir, seeded, end, report)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"kept database {name} ({url})")
        else:
            with psycopg.connect(f"{BASE_URL}/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
