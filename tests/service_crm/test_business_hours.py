"""SLA clock arithmetic over business calendars."""

from __future__ import annotations

import datetime as dt
import doctest

import pytest

from service_crm import business_hours
from service_crm.business_hours import Hours, add_business_time, business_time_between

UTC = dt.UTC
OFFICE = Hours("Europe/Berlin", False, frozenset({1, 2, 3, 4, 5}), dt.time(8), dt.time(17),
               frozenset({dt.date(2026, 12, 25)}))
H = dt.timedelta(hours=1)


def test_doctests() -> None:
    assert doctest.testmod(business_hours).failed == 0


def test_start_outside_hours_waits_for_opening() -> None:
    saturday = dt.datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert add_business_time(OFFICE, saturday, H) == dt.datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_holiday_is_skipped() -> None:
    thursday_late = dt.datetime(2026, 12, 24, 15, tzinfo=UTC)  # 16:00 Berlin, 1 h left
    assert add_business_time(OFFICE, thursday_late, 2 * H) == \
        dt.datetime(2026, 12, 28, 8, tzinfo=UTC)  # Fri 25th holiday, weekend, Mon 09:00 Berlin


def test_dst_change_keeps_local_opening_hours() -> None:
    # Europe/Berlin leaves summer time on Sun 25 Oct 2026: Mon opens at 07:00 UTC, not 06:00.
    friday_close = dt.datetime(2026, 10, 23, 15, tzinfo=UTC)
    assert add_business_time(OFFICE, friday_close, H) == dt.datetime(2026, 10, 26, 8, tzinfo=UTC)


def test_always_open_is_plain_addition() -> None:
    h = Hours("UTC", True, frozenset(), dt.time(0), dt.time(0), frozenset())
    t = dt.datetime(2026, 11, 21, 23, tzinfo=UTC)
    assert add_business_time(h, t, 5 * H) == t + 5 * H
    assert business_time_between(h, t, t + 5 * H) == 5 * H


def test_zero_duration_inside_hours_is_the_start() -> None:
    t = dt.datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert add_business_time(OFFICE, t, dt.timedelta(0)) == t


def test_between_is_inverse_of_add() -> None:
    t = dt.datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
    end = add_business_time(OFFICE, t, 13 * H)
    assert business_time_between(OFFICE, t, end) == 13 * H
    assert business_time_between(OFFICE, end, t) == dt.timedelta(0)


def test_rejects_naive_and_negative() -> None:
    with pytest.raises(ValueError, match="start"):
        add_business_time(OFFICE, dt.datetime(2026, 11, 23, 9), H)  # noqa: DTZ001
    with pytest.raises(ValueError, match="duration"):
        add_business_time(OFFICE, dt.datetime(2026, 11, 23, 9, tzinfo=UTC), -H)


def test_calendar_without_open_days_is_an_error() -> None:
    closed = Hours("UTC", False, frozenset(), dt.time(8), dt.time(17), frozenset())
    with pytest.raises(ValueError, match="no open hours"):
        add_business_time(closed, dt.datetime(2026, 11, 23, 9, tzinfo=UTC), H)
