"""`aftercare web`: waitress in several processes sharing one listening socket.

One waitress process runs Python under one GIL, so however many threads it has it uses at
most one core; under concurrent load the desk saturated at one core's worth of requests.
Here the parent binds the socket, forks ``workers`` children that each serve it with
waitress (the kernel hands each connection to one of them), and supervises them: a child
that dies is replaced, SIGTERM/SIGINT stop them all. No new dependency, and one worker is
exactly the old single-process server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import Any

log = logging.getLogger("aftercare.web")

THREADS = 8
# Waitress stops reading a request body past this (413), while it arrives: the largest
# upload (a 20 MB contract document) plus room for the form around it.
MAX_REQUEST_BODY_BYTES = 21 * 2**20
# A child that exits this soon after start is broken (bad settings, import error):
# stop rather than respawn it in a loop.
_MIN_UPTIME_S = 5.0


def default_workers() -> int:
    """One worker per CPU core this process may use (at least one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host.strip("[]"), port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock


def serve(application: Any, *, host: str, port: int, workers: int,
          threads: int = THREADS) -> int:
    """Serve ``application`` on host:port with ``workers`` processes (0 = one per core)."""
    from waitress import serve as waitress_serve

    if workers < 0:
        raise ValueError(f"`workers` must be >= 0, got {workers}")
    workers = workers or default_workers()
    sock = listen(host, port)
    print(f"Aftercare web on http://{host}:{sock.getsockname()[1]}/ "
          f"({workers} process{'es' if workers > 1 else ''} x {threads} threads)", flush=True)
    if workers == 1:
        waitress_serve(application, sockets=[sock], threads=threads, ident="aftercare",
                       max_request_body_size=MAX_REQUEST_BODY_BYTES)
        return 0

    # Nothing that holds a database connection or a thread may cross the fork.
    from django.db import connections
    connections.close_all()

    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                waitress_serve(application, sockets=[sock], threads=threads, ident="aftercare",
                               max_request_body_size=MAX_REQUEST_BODY_BYTES)
            except BaseException:
                log.exception("web worker %d failed", os.getpid())
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        log.warning("web worker %d exited (status %d); starting another", pid, status)
        if time.monotonic() - started < _MIN_UPTIME_S:
            log.error("web worker %d died within %.0f s of starting: stopping", pid,
                      _MIN_UPTIME_S)
            code = 1
            stop(signal.SIGTERM, None)
            continue
        spawn()
    sock.close()
    return code
