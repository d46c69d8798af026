"""Business-hours arithmetic for SLA clocks (pure functions over a calendar description).

Times are timezone-aware; the calendar's opening hours are local wall-clock times in its own
time zone, and all arithmetic on instants is done in UTC so DST changes do not shift it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

UTC = dt.UTC
_MAX_DAYS = 3 * 366  # a calendar with no open hour in three years is a configuration error


@dataclass(frozen=True)
class Hours:
    """When the SLA clock runs."""

    timezone: str
    always_open: bool
    workdays: frozenset[int]  # ISO weekdays, 1 = Monday
    opens: dt.time
    closes: dt.time
    holidays: frozenset[dt.date]


def _need_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"`{name}` must be timezone-aware")


def _windows(hours: Hours, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Open windows (UTC) from the local day containing ``start`` onwards."""
    tz = ZoneInfo(hours.timezone)
    day = start.astimezone(tz).date()
    for _ in range(_MAX_DAYS):
        if day.isoweekday() in hours.workdays and day not in hours.holidays:
            yield (dt.datetime.combine(day, hours.opens, tz).astimezone(UTC),
                   dt.datetime.combine(day, hours.closes, tz).astimezone(UTC))
        day += dt.timedelta(days=1)
    raise ValueError(f"calendar has no open hours within {_MAX_DAYS} days")


def add_business_time(hours: Hours, start: dt.datetime, duration: dt.timedelta) -> dt.datetime:
    """The instant ``duration`` of open time after ``start``.

    >>> h = Hours("Europe/Berlin", False, frozenset({1, 2, 3, 4, 5}), dt.time(8), dt.time(17),
    ...           frozenset())
    >>> friday_4pm = dt.datetime(2026, 11, 20, 15, tzinfo=UTC)  # 16:00 in Berlin
    >>> add_business_time(h, friday_4pm, dt.timedelta(hours=4)).isoformat()
    '2026-11-23T10:00:00+00:00'
    """
    _need_aware("start", start)
    if duration < dt.timedelta(0):
        raise ValueError("`duration` must not be negative")
    start = start.astimezone(UTC)
    if hours.always_open:
        return start + duration
    remaining = duration
    for opens, closes in _windows(hours, start):
        cursor = max(start, opens)
        if cursor >= closes:
            continue
        if remaining <= closes - cursor:
            return cursor + remaining
        remaining -= closes - cursor
    raise AssertionError("unreachable")  # _windows raises first


def business_time_between(hours: Hours, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Open time between two instants (zero if ``end`` is not after ``start``).

    >>> h = Hours("UTC", False, frozenset({1, 2, 3, 4, 5}), dt.time(9), dt.time(17), frozenset())
    >>> business_time_between(h, dt.datetime(2026, 11, 20, 16, tzinfo=UTC),
    ...                       dt.datetime(2026, 11, 23, 10, tzinfo=UTC))
    datetime.timedelta(seconds=7200)
    """
    _need_aware("start", start)
    _need_aware("end", end)
    if end <= start:
        return dt.timedelta(0)
    if hours.always_open:
        return end - start
    total = dt.timedelta(0)
    for opens, closes in _windows(hours, start):
        if opens >= end:
            break
        lo, hi = max(start, opens), min(end, closes)
        if hi > lo:
            total += hi - lo
    return total
