"""Telemetry responses built straight from the store's rollup rows.

The chart endpoint returns thousands of buckets per request; going through a DRF
``Serializer`` (eight field objects per row, per-row datetime formatting) cost ~150 ms of a
210 ms request at 30 days. Here the rows become JSON with ``orjson`` in one pass, in exactly
the shape ``RollupSerializer`` documents (``layout=rows``, the default), or column-wise per
(device, metric) as the chart draws them (``layout=columns``: epoch seconds and one array per
statistic, about 3x smaller).

The coarse resolutions (``6h``, ``1d``) are folded from the 1-hour rollups: bucket edges on
multiples of the width since the epoch (UTC), min of mins, max of maxes, mean weighted by the
count of non-null readings, ``last`` of the latest hour, counts summed. A bucket cut by the
window's start holds only the hours inside the window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import orjson

from aftercare.store.rollups import RollupRow

Resolution = Literal["1m", "1h", "6h", "1d"]
RESOLUTIONS: tuple[Resolution, ...] = ("1m", "1h", "6h", "1d")
LAYOUTS = ("rows", "columns")
COARSE: dict[str, dt.timedelta] = {"6h": dt.timedelta(hours=6), "1d": dt.timedelta(days=1)}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# DRF's DateTimeField writes UTC as "...Z"; orjson does the same with OPT_UTC_Z.
_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def rollups_downsample(rows: Iterable[RollupRow], *, width: dt.timedelta) -> list[RollupRow]:
    """Fold rollup rows into buckets of ``width`` (a multiple of their own), oldest first.

    Rows may come in any order; the result is ordered by (bucket, device, metric) like the
    selector's. A bucket whose rows have no readings keeps ``mean`` None and ``count`` 0.
    """
    acc: dict[tuple[dt.datetime, str, str], list[Any]] = {}
    for r in rows:
        b = _EPOCH + ((r.bucket - _EPOCH) // width) * width
        key = (b, r.device, r.metric)
        a = acc.get(key)
        if a is None:
            # min, max, sum of mean*count, count, bucket of last, last
            acc[key] = [r.min, r.max, (r.mean or 0.0) * r.count, r.count, r.bucket, r.last]
            continue
        if r.min is not None and (a[0] is None or r.min < a[0]):
            a[0] = r.min
        if r.max is not None and (a[1] is None or r.max > a[1]):
            a[1] = r.max
        if r.mean is not None:
            a[2] += r.mean * r.count
        a[3] += r.count
        if r.bucket > a[4]:
            a[4], a[5] = r.bucket, r.last
    return [
        RollupRow(bucket=b, device=d, metric=m, min=a[0], max=a[1],
                  mean=(a[2] / a[3]) if a[3] else None, last=a[5], count=a[3])
        for (b, d, m), a in sorted(acc.items(), key=lambda kv: kv[0])
    ]


def rollups_as_rows_json(rows: Sequence[RollupRow]) -> bytes:
    """The documented row format (``RollupSerializer``): a list of objects, one per bucket."""
    return orjson.dumps(
        [{"bucket": r.bucket, "device": r.device, "metric": r.metric,
          "min": _num(r.min), "max": _num(r.max), "mean": _num(r.mean), "last": _num(r.last),
          "count": int(r.count)} for r in rows],
        option=_OPTS)


def rollups_as_columns_json(rows: Sequence[RollupRow], *, resolution: str,
                            start: dt.datetime, end: dt.datetime) -> bytes:
    """One series per (device, metric) in first-seen order, each column-wise:
    ``{"device", "metric", "t": [epoch s], "min": [...], "max", "mean", "last", "count"}``."""
    series: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        s = series.get((r.device, r.metric))
        if s is None:
            s = series[(r.device, r.metric)] = {
                "device": r.device, "metric": r.metric, "t": [], "min": [], "max": [],
                "mean": [], "last": [], "count": []}
        s["t"].append(int((r.bucket - _EPOCH).total_seconds()))
        s["min"].append(_num(r.min))
        s["max"].append(_num(r.max))
        s["mean"].append(_num(r.mean))
        s["last"].append(_num(r.last))
        s["count"].append(int(r.count))
    return orjson.dumps({"resolution": resolution, "start": start, "end": end,
                         "series": list(series.values())}, option=_OPTS)


def _num(v: float | None) -> float | None:
    # The database hands back float (or Decimal from an odd view); DRF's FloatField wrote float.
    return None if v is None else float(v)
