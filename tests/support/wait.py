"""The one way a test waits: for a condition it can check, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(what: str, check: Callable[[], object], timeout_s: float = 30.0,
             interval_s: float = 0.05) -> None:
    """Poll ``check`` until it is true; raise ``TimeoutError`` naming ``what`` after
    ``timeout_s``. The test then asserts the state, not how fast it got there."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)
