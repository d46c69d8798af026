"""The anomaly worker, run by ``aftercare detect`` (:mod:`anomaly.detect`).

Each step reads the telemetry committed for the next slice of event time, pivots it into one
``(channels, time)`` array on a fixed grid (``--step-s``), runs the :class:`DetectorBank`, and in
one transaction queues the resulting alert events in ``anomaly_outbox`` and stores the new
watermark with the detector checkpoint. A second phase publishes the outbox through FastStream
and marks what was sent. So a crash at any point neither loses nor repeats an alert: before the
commit nothing happened (the slice is processed again, deterministically, with the same alert ids
and revisions), after it the events are in the outbox until published (consumers are idempotent
by ``(alert_id, revision)`` if a publish is repeated after a crash).

**Late commits.** Ingest transactions commit a little after the readings' timestamps, and they
commit out of order, so "everything up to max(time) seen" would skip rows that commit later with
an earlier timestamp. The worker therefore only analyses up to ``now() - settle_s`` (database
clock): a slice is read once every ingest transaction that could still write into it has
committed. ``settle_s`` (default 30 s) must exceed the ingest batch interval plus a commit, and
the devices' clock skew. Readings that arrive later than that (a device's buffered backlog after
an outage) are older than the watermark and are *not* fed to the streaming detectors, whose state
has moved past them; the outage itself is reported by the no-data check. Slices never overlap and
(device, metric, time) is unique in the store, so nothing is read twice.

**Vibration bursts** (``waveforms``, written by ingest in the same transactions as telemetry)
are read by the same slice bounds, so each burst is analysed exactly once, in the step whose
slice holds its timestamp. Each is reduced to its envelope level at the bearing's defect
frequencies (:class:`~anomaly.spectral.BearingCheck`) and, held until the asset's next burst,
fused into the bank as the ``spectral`` evidence (failure mode ``bearing_wear``).

**Equipment profiles** come from the CRM's equipment-model catalogue: a device is watched with
the profile of its asset's model (:mod:`anomaly.catalogue`), whatever its id. The worker polls
the catalogue's version every ``reload_s`` and, when a profile, a claim or an asset's model
changed, re-applies the channels' configuration to the running bank (its learned state kept),
so an edit in the admin or the API takes effect without a restart.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from aftercare.events import AlertEvent, Evidence
from aftercare.store import detect_state, telemetry
from anomaly.bank import BankConfig, BankResult, DetectorBank
from anomaly.catalogue import Catalogue, catalogue_version, read_catalogue
from anomaly.fusion import DEVICE_PROBLEMS, Transition, ratio_to_score
from anomaly.publish import AlertPublisher, PublishUnavailable
from anomaly.spectral import DEFECTS, BearingCheck, HeldScore, spectral_extra

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Conn = psycopg.Connection[Any]

def _us(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


@dataclass(frozen=True)
class WorkerOptions:
    name: str = "default"
    settle_s: float = 30.0
    step_s: float = 1.0
    max_span_s: float = 600.0
    waveform_channel: str = "accel_x"     # the bursts' channel the spectral check reads
    reload_s: float = 10.0                # how often the catalogue's version is polled
    # How long a channel no equipment model describes learns before it may alert
    # (BankConfig.generic_learn_s; None: the bank's setting, a day).
    learn_unknown_s: float | None = None


class DetectWorker:
    """One worker's state: the bank, the watermark and the channel index.

    `catalogue`: a fixed one (tests, tools); default the CRM's, read from `conn` and reloaded
    when it changes.
    """

    def __init__(
        self,
        conn: Conn,
        options: WorkerOptions | None = None,
        config: BankConfig | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.conn = conn
        self.options = options or WorkerOptions()
        self.config = config or BankConfig()
        if self.options.learn_unknown_s is not None:
            self.config = replace(self.config, generic_learn_s=self.options.learn_unknown_s)
        self.live_catalogue = catalogue is None
        self.catalogue = read_catalogue(conn) if catalogue is None else catalogue
        self._checked_at = time.monotonic()
        self.step_us = int(round(self.options.step_s * 1e6))
        if self.step_us <= 0:
            raise ValueError("`step_s` must be > 0")
        self.bank = DetectorBank([], self.config)
        self.spectral = BearingCheck(0)          # one row per bank asset
        self.watermark_us: int | None = None
        self.chan_keys = np.zeros(0, np.int64)   # telemetry's channel key, per bank row
        self._load()

    # ------------------------------------------------------------------ state
    def _load(self) -> None:
        row = detect_state.load_checkpoint(self.conn, self.options.name)
        self.conn.commit()
        if row is None:
            return
        watermark, state = row
        with np.load(io.BytesIO(state), allow_pickle=False) as npz:
            keys = npz["chan_keys"].astype(np.int64)
            if "key_shift" not in npz.files:
                # Written when keys gave the metric id 16 bits: the same channels, re-keyed.
                keys = ((keys >> 16) << telemetry.KEY_SHIFT) | (keys & 0xFFFF)
            bank_bytes = npz["bank"].tobytes()
            spectral = {k[len("spectral."):]: npz[k] for k in npz.files
                        if k.startswith("spectral.")}
        names = self._names(keys)
        specs = [self.catalogue.spec(d, m) for d, m in names]
        self.bank = DetectorBank.from_bytes(bank_bytes, specs, self.config)
        if spectral:                  # a checkpoint from before the spectral check: fresh
            self.spectral.load_state(spectral)
        self._grow_spectral()
        self.chan_keys = keys
        self.watermark_us = _us(watermark)

    def _state_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays: dict[str, NDArray[Any]] = {
            "chan_keys": self.chan_keys,
            "key_shift": np.array(telemetry.KEY_SHIFT),
            "bank": np.frombuffer(self.bank.to_bytes(), dtype=np.uint8)}
        arrays.update({f"spectral.{k}": v for k, v in self.spectral.state_dict().items()})
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    def _names(self, keys: NDArray[np.int64]) -> list[tuple[str, str]]:
        """(device_key, metric name) of channel keys, in the keys' order."""
        by_key = telemetry.channel_names(self.conn, keys.tolist())
        return [by_key[int(k)] for k in keys]

    def reload_if_changed(self, *, force: bool = False) -> bool:
        """Re-read the CRM's catalogue if its version moved (at most every ``reload_s``) and
        give every channel its new configuration, keeping what the bank has learned. True if
        it reloaded."""
        if not self.live_catalogue:
            return False
        now = time.monotonic()
        if not force and now - self._checked_at < self.options.reload_s:
            return False
        self._checked_at = now
        if catalogue_version(self.conn) == self.catalogue.version:
            return False
        self.catalogue = read_catalogue(self.conn)
        specs = [self.catalogue.spec(c.asset, c.metric) for c in self.bank.specs]
        self.bank = DetectorBank.from_bytes(self.bank.to_bytes(), specs, self.config)
        return True

    # ------------------------------------------------------------------- step
    def step(self) -> list[AlertEvent]:
        """Analyse the next settled slice; return the events it queued (empty if none)."""
        self.reload_if_changed()
        conn = self.conn
        horizon = _us(telemetry.db_now(conn)) - int(self.options.settle_s * 1e6)
        if self.watermark_us is None:
            first = telemetry.first_time(conn)
            if first is None:
                conn.commit()
                return []
            # Grid columns are (end - step, end] with ends on whole steps.
            self.watermark_us = (_us(first) - 1) // self.step_us * self.step_us
        lo = self.watermark_us
        span_us = int(self.options.max_span_s * 1e6)
        nxt = telemetry.first_time(conn, after=_dt(lo))
        if nxt is None or _us(nxt) > horizon:
            conn.commit()
            return []
        if _us(nxt) - lo > span_us:
            # The whole fleet was silent (an ingest outage or an idle store): skip ahead on the
            # grid instead of feeding the detectors hours of empty columns.
            lo += (_us(nxt) - lo - 1) // self.step_us * self.step_us
        n_t = min(horizon - lo, span_us) // self.step_us
        if n_t <= 0:
            conn.commit()
            return []
        hi = lo + n_t * self.step_us
        data = telemetry.read_slice(conn, _dt(lo), _dt(hi))
        t_us = np.fromiter((r[0] for r in data), np.int64, len(data))
        keys = np.fromiter((r[1] for r in data), np.int64, len(data))
        vals = np.fromiter((np.nan if r[2] is None else r[2] for r in data), np.float64,
                           len(data))
        self._add_channels(np.unique(keys))
        order = np.argsort(self.chan_keys)
        rows = order[np.searchsorted(self.chan_keys, keys, sorter=order)]
        cols = (t_us - lo - 1) // self.step_us
        values = np.full((self.bank.channels, n_t), np.nan)
        sort = np.argsort(t_us, kind="stable")          # the latest reading in a cell wins
        values[rows[sort], cols[sort]] = vals[sort]
        times = lo + (np.arange(n_t, dtype=np.int64) + 1) * self.step_us
        extra, held = spectral_extra(
            self.bank, self.spectral, times, values, *self._bursts(lo, hi),
            orders_for=self.catalogue.bearing_orders,
            speed_metric_for=self.catalogue.speed_metric)
        result = self.bank.update(times, values, extra=extra)
        events = self._events(result, times, values, held)
        with conn.transaction():
            detect_state.save_step(conn, self.options.name,
                                   [(ev.alert_id, ev.revision, ev.to_json()) for ev in events],
                                   _dt(hi), self._state_bytes())
        self.watermark_us = hi
        return events

    def _add_channels(self, keys: NDArray[np.int64]) -> None:
        new = np.setdiff1d(keys, self.chan_keys)
        if new.size == 0:
            return
        names = self._names(new)
        self.bank.add([self.catalogue.spec(d, m) for d, m in names])
        self.chan_keys = np.concatenate([self.chan_keys, new])
        self._grow_spectral()

    def _grow_spectral(self) -> None:
        self.spectral.add_channels(len(self.bank.assets) - self.spectral.channels)

    def _bursts(self, lo: int, hi: int) -> tuple[list[str], NDArray[np.int64],
                                                 list[NDArray[np.float32]], NDArray[np.float64],
                                                 NDArray[np.float64]]:
        """The bursts committed in the slice (lo, hi]: the same bounds as the telemetry, so a
        burst is read by exactly one step. (devices, times, samples, sample rates, shaft rpm
        as the device sent it or NaN)."""
        rows = telemetry.waveforms_between(self.conn, _dt(lo), _dt(hi),
                                           self.options.waveform_channel)
        return ([r[0] for r in rows], np.array([r[1] for r in rows], np.int64),
                [np.frombuffer(r[3], dtype="<f4") for r in rows],
                np.array([r[2] for r in rows], np.float64),
                np.array([np.nan if r[4] is None else r[4] for r in rows], np.float64))

    # ----------------------------------------------------------------- events
    def _events(self, r: BankResult, times: NDArray[np.int64],
                values: NDArray[np.float64], held: HeldScore) -> list[AlertEvent]:
        out = [self._event(tr, "equipment", r, times, values, held)
               for tr in r.equipment_events]
        out += [self._event(tr, "device", r, times, values, held) for tr in r.device_events]
        return sorted(out, key=lambda e: (e.at, e.alert_id, e.revision))

    def _event(self, tr: Transition, kind: str, r: BankResult, times: NDArray[np.int64],
               values: NDArray[np.float64], held: HeldScore) -> AlertEvent:
        bank = self.bank
        device = bank.assets[tr.asset]
        rows = np.flatnonzero(bank.asset_of == tr.asset)
        i = tr.sample
        if kind == "equipment":
            strength = np.nan_to_num(r.channel_score[rows, i])
            mode = bank.modes[tr.mode]
        else:
            strength = r.device_channel[rows, i].astype(np.float64)
            mode = DEVICE_PROBLEMS[tr.mode]
        top = rows[np.argsort(-strength, kind="stable")[:3]]
        per_det = {"limit": r.limit, "baseline": r.baseline, "cusum": r.cusum}
        evidence = []
        for row in top:
            if kind == "equipment" and not r.channel_score[row, i] > 0:
                continue
            ratios = {k: float(np.nan_to_num(v[row, i])) for k, v in per_det.items()}
            det = max(ratios, key=lambda k: ratios[k]) if kind == "equipment" else mode
            val, base = values[row, i], r.baseline_mean[row, i]
            evidence.append(Evidence(
                metric=bank.specs[row].metric, detector=det,
                score=float(np.clip(np.nan_to_num(r.channel_score[row, i]), 0, 1)),
                value=None if np.isnan(val) else float(val),
                baseline=None if np.isnan(base) else float(base),
                window_start=_dt(tr.opened_at_us), window_end=_dt(int(times[i]))))
        detectors = {}
        if top.size:
            detectors = {k: float(np.nan_to_num(v[top[0], i])) for k, v in per_det.items()}
        classified = True
        if kind == "equipment":
            more, rows_ev = self._asset_evidence(tr, r, times, values, held)
            detectors.update(more)
            evidence = sorted(evidence + rows_ev, key=lambda e: -e.score)
            classified = self._classified(device, tr, top)
        return AlertEvent(
            alert_id=f"{device}:{kind}:{tr.opened_at_us}", revision=tr.revision,
            state=tr.state, device=device, kind=kind, severity=tr.severity,  # type: ignore[arg-type]
            failure_mode=mode, score=float(np.clip(tr.score, 0.0, 1.0)),
            opened_at=_dt(tr.opened_at_us), at=_dt(int(times[i])), evidence=tuple(evidence),
            detectors=detectors, classified=classified)

    def _classified(self, device: str, tr: Transition, top: NDArray[np.int64]) -> bool:
        """Whether the equipment model knows the alert's failure mode: the channel that leads
        it is named by the device's model; a mode from the per-asset checks (bearing bursts,
        T² / SPE) needs the model's profile, as those checks do."""
        if top.size and int(self.bank.mode_of[top[0]]) == tr.mode:
            return self.catalogue.classified(device, self.bank.specs[top[0]].metric)
        return self.catalogue.profile(device) is not None

    def _asset_evidence(self, tr: Transition, r: BankResult, times: NDArray[np.int64],
                        values: NDArray[np.float64], held: HeldScore
                        ) -> tuple[dict[str, float], list[Evidence]]:
        """The per-asset detectors at the event's sample: T² / SPE of the correlated group
        (with the channel contributing most) and the spectral check (defect band and its
        level against the healthy level). Rows for those at half their threshold or more."""
        a, i = tr.asset, tr.sample
        start, end = _dt(tr.opened_at_us), _dt(int(times[i]))
        detectors: dict[str, float] = {}
        rows: list[Evidence] = []
        row = int(r.mv_row[a, i])
        for name, stat in (("t2", r.t2), ("spe", r.spe)):
            ratio = float(stat[a, i])
            if np.isnan(ratio):
                continue
            detectors[name] = ratio
            if ratio >= 0.5 and row >= 0:
                val = values[row, i]
                rows.append(Evidence(
                    metric=self.bank.specs[row].metric, detector=name,
                    score=float(ratio_to_score(ratio)), value=None if np.isnan(val) else
                    float(val), window_start=start, window_end=end))
        ratio = float(held.ratio[a, i])
        if not np.isnan(ratio):
            detectors["spectral"] = ratio
            if ratio >= 0.5:
                defect = DEFECTS[int(held.defect[a, i])]
                rows.append(Evidence(
                    metric=f"{self.options.waveform_channel}:{defect}", detector="spectral",
                    score=float(ratio_to_score(ratio)), value=float(held.level[a, i]),
                    baseline=float(held.healthy[a, i]), window_start=start, window_end=end))
        return detectors, rows

    # ----------------------------------------------------------------- outbox
    def pending(self, limit: int = 1000) -> list[tuple[int, bytes]]:
        rows = detect_state.outbox_pending(self.conn, self.options.name, limit)
        self.conn.commit()
        return rows

    def mark_published(self, ids: Sequence[int]) -> None:
        with self.conn.transaction():
            detect_state.outbox_mark_published(self.conn, ids)


async def publish_pending(worker: DetectWorker, publisher: AlertPublisher) -> int:
    """Publish every queued event in order, marking each batch once sent; returns the count.

    With no broker node taking events (:class:`PublishUnavailable`) it marks what went out
    and returns: the rest waits in the outbox, in order, for the next pass, and the caller
    goes on detecting."""
    sent = 0
    while publisher.due() and (batch := await asyncio.to_thread(worker.pending)):
        done: list[int] = []
        try:
            for i, payload in batch:
                await publisher.send(payload)
                done.append(i)
        except PublishUnavailable:
            return sent + await _marked(worker, done)
        sent += await _marked(worker, done)
    return sent


async def _marked(worker: DetectWorker, ids: list[int]) -> int:
    if ids:
        await asyncio.to_thread(worker.mark_published, ids)
    return len(ids)


async def run(database_url: str, events_url: str, options: WorkerOptions, *, once: bool,
              poll_s: float) -> None:
    async with AlertPublisher(events_url) as publisher:
        with psycopg.connect(database_url) as conn:
            worker = await asyncio.to_thread(DetectWorker, conn, options, None)
            # Partitioned events by asset, from the catalogue as it is at each send.
            publisher.event_key = lambda device: worker.catalogue.event_key(device)
            await publish_pending(worker, publisher)        # left over from a crash
            while True:
                before = worker.watermark_us
                await asyncio.to_thread(worker.step)
                await publish_pending(worker, publisher)
                if worker.watermark_us == before:     # caught up with the settled horizon
                    if once:
                        return
                    await asyncio.sleep(poll_s)
