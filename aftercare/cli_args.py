"""Argparse types for the command line's numbers: a value outside its range is a usage error
that names the flag and the range (exit 2), never a traceback from the constructor it would
have reached. One way for every entry point (`aftercare ingest`, `detect`, `web`, `demo`,
`anomaly scenarios`)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An integer from `lo` to `hi` (no upper end if None).

    >>> int_in(1, 16)("16"), int_in(1)("50000")
    (16, 50000)
    >>> int_in(1)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be at least 1, got 0
    >>> int_in(1, 16)("x")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: not an integer: 'x'
    """
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if n < lo or (hi is not None and n > hi):
            raise argparse.ArgumentTypeError(
                f"must be at least {lo}, got {n}" if hi is None else
                f"must be from {lo} to {hi}, got {n}")
        return n
    return parse


def float_in(lo: float, hi: float | None = None, *,
             above: bool = False) -> Callable[[str], float]:
    """A finite number from `lo` (or above it, with `above`) to `hi` (no upper end if None).

    >>> float_in(0.0)("2.5"), float_in(0.0, above=True)("1e-3")
    (2.5, 0.001)
    >>> float_in(0.0, above=True)("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be above 0, got 0
    >>> float_in(0.0)("nan")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: not a finite number: 'nan'
    """
    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
        low_ok = x > lo if above else x >= lo
        if not low_ok or (hi is not None and x > hi):
            bound = f"above {lo:g}" if above else f"at least {lo:g}"
            raise argparse.ArgumentTypeError(
                f"must be {bound}, got {x:g}" if hi is None else
                f"must be {bound} and at most {hi:g}, got {x:g}")
        return x
    return parse
