"""The main job: `aftercare demo` brings up the pipeline and the web login page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from aftercare import broker
from tests.support.services import drop_database, dsn_for
from tests.support.wait import wait_for

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def demo_db() -> Iterator[str]:
    name = f"aftercare_demo_{uuid.uuid4().hex[:8]}"
    try:
        yield dsn_for(name)  # the demo creates it, as on a fresh machine
    finally:
        drop_database(name)


def test_demo_runs_the_pipeline_and_serves_the_login_page(demo_db: str, tmp_path: Path) -> None:
    web_port = broker.free_port()
    env = {**os.environ, "DATABASE_URL": demo_db, "AFTERCARE_DATA_DIR": str(tmp_path),
           "WEB_PORT": str(web_port)}
    log = (tmp_path / "demo.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aftercare_cli", "demo", "--mqtt-port", "0", "--duration-s", "120"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        page = ""

        def login_page() -> bool:
            nonlocal page
            if proc.poll() is not None:
                return True                      # it stopped: the assertions below say why
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/login/",  # noqa: S310
                                            timeout=2) as resp:
                    page = resp.read().decode()
                return True
            except OSError:
                return False

        wait_for("the demo's login page", login_page, timeout_s=90, interval_s=0.5)
        out = (tmp_path / "demo.out").read_text()
        assert 'name="password"' in page, out
        assert "admin login: admin / aftercare-demo" in out
        if "simulate" in out.split("running:")[1].split("\n")[0]:
            # The simulated fleet reaches the store through the broker and ingest.
            def stored() -> int:
                with psycopg.connect(demo_db) as conn:
                    row = conn.execute("SELECT count(*) FROM readings").fetchone()
                return int(row[0]) if row else 0

            wait_for("readings stored by the demo's ingest", stored, timeout_s=90,
                     interval_s=0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    assert "== demo stopped" in (tmp_path / "demo.out").read_text()
