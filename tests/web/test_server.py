"""`aftercare web`: several waitress processes on one socket, stopped together."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from aftercare import config
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _status_of_oversized_upload(port: int) -> int:
    """Announce a 30 MB body and send none of it: the server answers from the headers."""
    from web.server import MAX_REQUEST_BODY_BYTES

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /desk/contracts/1/documents/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     b"Content-Length: %d\r\n\r\n" % (MAX_REQUEST_BODY_BYTES + 1))
        return int(sock.recv(64).split()[1])


@pytest.mark.db
def test_web_serves_from_several_processes_and_stops_them_all(tmp_path: Path) -> None:
    port = _free_port()
    # /healthz asks the database for `SELECT 1`: any database will do.
    env = {**os.environ, "AFTERCARE_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT),
           "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres"}
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "aftercare_cli", "web", "--port", str(port),
                             "--workers", "2"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",  # noqa: S310
                                            timeout=2) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        wait_for("the web server's health check", healthy, timeout_s=60, interval_s=0.2)
        workers = _children(proc.pid)
        assert len(workers) == 2
        assert _status_of_oversized_upload(port) == 413
        # Every worker answers on the shared socket: keep asking until both have.
        for _ in range(20):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()  # noqa: S310
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        def gone(pid: int) -> bool:
            try:
                return "zombie" in Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                return True

        wait_for("the workers to exit", lambda: all(gone(pid) for pid in workers), timeout_s=5)
        assert "2 processes x 8 threads" in (tmp_path / "web.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow  # starts the server in a subprocess
def test_negative_worker_count_is_refused() -> None:
    result = subprocess.run([sys.executable, "-m", "aftercare_cli", "web", "--workers", "-1"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2
    assert "--workers" in result.stderr


@pytest.mark.parametrize("value", ["many", "-1", "65"])
def test_bad_web_workers_setting_names_the_variable(value: str) -> None:
    with pytest.raises(config.ConfigError, match="WEB_WORKERS"):
        config.load({"WEB_WORKERS": value})
    assert config.load({"WEB_WORKERS": "0"}).web_workers == 0


@pytest.mark.django_db(transaction=True)
def test_login_failures_counted_in_one_process_block_the_next(db: None) -> None:
    """The limiter's counts are in PostgreSQL, not in one process's memory: failures recorded
    here block the same (user name, address) pair in another process, and only that pair."""
    from django.db import connection

    from service_crm.services.login_throttle import login_attempt_begin
    from web.login import login_limits

    limits = login_limits()
    for _ in range(limits.per_pair):
        assert login_attempt_begin(username="shared-desk", ip="192.0.2.1", limits=limits).allowed
    s = connection.settings_dict
    url = f"postgresql://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    probe = ("import django; django.setup(); "
             "from service_crm.services.login_throttle import login_attempt_begin as b; "
             "from web.login import login_limits as l; "
             "print(b(username='shared-desk', ip='192.0.2.1', limits=l()).allowed, "
             "b(username='shared-desk', ip='192.0.2.2', limits=l()).allowed)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, check=False,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": url,
                                 "DJANGO_SETTINGS_MODULE": "web.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
