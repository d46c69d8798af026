"""The streaming detector bank: every channel of the fleet in one (channels, time) array.

Per channel: limit rules (duration + hysteresis), an adaptive EWMA baseline (per hour of day for
metrics with a daily cycle), two-sided CUSUM for slow drift, and sensor health. Per asset: the
fused equipment score and failure mode, and the device-problem flag, each with an
:class:`~anomaly.fusion.AlertTracker` so one persisting condition is one alert.

Equipment semantics come in through :class:`ChannelSpec` (see :mod:`anomaly.models`): a channel
can name the failure mode it points to, be an operating input that is never scored, be steady
enough for drift detection, or be the asset's running indicator. While an asset is stopped, and
for ``restart_hold_s`` after it restarts (thermal lags settle), its channels are not fed to the
equipment detectors: a normal stop is neither an alert nor part of the learned baseline. Sensor
health always runs. An equipment condition must persist for ``open_hold_s`` before it opens an
alert, so a single wild reading (a sensor spike, reported as a device problem) never does.

Per asset, two more sources join the fused score: the Hotelling T² / SPE of the asset's group of
correlated process channels (``ChannelSpec.multivariate``; a broken correlation that no single
channel's detectors see; corroborating only: it joins where another source is at half its
threshold), and per-asset evidence the caller passes in (``update(..., extra=)``: the worker's
spectral check of vibration bursts, which also tells a drifting vibration sensor from a wearing
bearing).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from anomaly.baseline import EwmaBaseline, ewma_with_prior
from anomaly.drift import Cusum
from anomaly.fusion import (
    DEVICE_PROBLEMS,
    UNKNOWN_MODE,
    AlertTracker,
    Transition,
    failure_mode_for,
    ratio_to_score,
    reduce_argmax,
    reduce_max,
)
from anomaly.health import CounterLearner, HealthResult, ReportingSilence, SensorHealth
from anomaly.likelihood import AnomalyLikelihood, Recurrence
from anomaly.limits import LimitRule, hysteresis, run_start
from anomaly.multivariate import (
    GROUP_WIDTH,
    REGIME_WIDTH,
    AssetT2,
    OperatingRegime,
    RegimeAnchor,
)
from anomaly.seasonal import WeekdayChoice
from anomaly.spread import SpreadChange
from anomaly.state import FirstTrue, LastTrue, StreamingDetector
from anomaly.validation import as_block, as_times

NAN = float("nan")


@dataclass(frozen=True)
class ChannelSpec:
    """One (asset, metric) channel and its configuration from the equipment model."""

    asset: str
    metric: str
    high: float = NAN
    clear_high: float | None = None
    low: float = NAN
    clear_low: float | None = None
    duration_s: float = 0.0
    phys_min: float = NAN
    phys_max: float = NAN
    min_std: float = 1e-6
    daily: bool = False
    mode: str = ""                 # failure mode a deviation points to; "" = from the name
    scored: bool = True            # False: an operating input, never equipment evidence
    drift: bool = True             # run CUSUM drift detection on this channel
    stuck: bool = True             # False: may legitimately stay constant (counters)
    run_level: float = NAN         # finite: the asset runs while this channel is above it
    steps: bool = False            # legitimately steps for a single sample: no spike check
    # Detect on a characteristic of the machine instead of the raw value: one of TRANSFORMS,
    # computed with the same asset's `partners` channels (raw value if one is missing).
    transform: str = ""
    partners: tuple[str, ...] = ()
    side: int = 0                  # +1 / -1: only rises / falls are evidence (0: both)
    # > 0: the adaptive detectors (baseline, CUSUM) watch the running EWMA of the value over
    # this half-life instead (averages out a load/unload cycle); limits still see each sample.
    smooth_s: float = 0.0
    # Finite: a machine at rest reads at most this here (vibration); more is a sensor offset.
    idle_max: float = NAN
    # Multivariate (Hotelling T² / SPE, anomaly.multivariate.AssetT2): "" = not in the asset's
    # correlated process group; "linear" / "log" = in it, as the raw value / its logarithm
    # (log for quantities whose couplings are multiplicative, such as a pump's affinity laws).
    multivariate: str = ""
    # True: no equipment model names this channel (an unknown device or metric). Its adaptive
    # evidence is calibrated against its own long-run behaviour (anomaly.likelihood), as every
    # channel's is with `BankConfig.calibrate`: with no model to say what is normal for it, one
    # threshold has to mean the same on a quiet channel and a noisy one.
    generic: bool = False
    # Metrics of the same asset that move with this one whenever the machine itself changes
    # (a chiller's return water follows its supply water; a pump's head does not change
    # without its flow or its power): a sudden change of this channel while every witness
    # holds steady, and nothing else of the asset moves, is the sensor (a loose connection, a
    # sensor replaced or re-calibrated after drifting), not the machine. Empty: no check.
    witnesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class BankConfig:
    """Settings shared by every channel (the per-channel ones live in :class:`ChannelSpec`)."""

    z_limit: float = 8.0
    baseline_halflife: float = 600.0
    baseline_warmup: int = 120
    baseline_var_halflife: float = 21600.0
    baseline_var_clip: float = float("inf")   # block-size dependent when finite
    cusum_k: float = 1.0
    cusum_h: float = 40.0
    cusum_warmup: int = 120
    stuck_s: float = 120.0
    no_data_s: float = 300.0
    clear_hold_s: float = 120.0
    restart_hold_s: float = 1200.0
    limit_hold_s: float = 60.0
    open_hold_s: float = 5.0
    suspect_s: float = 900.0
    # A machine stopped this long (a trip and repair, a night off) restarts with freshly
    # learned adaptive baselines: the old ones describe the machine before the stop (for a
    # trip, the faulty one). Must not exceed `restart_hold_s` plus the shortest block, so the
    # reset (at the end of a block) always falls before the first steady sample after it.
    relearn_stop_s: float = 600.0
    # Multivariate T² / SPE per asset (anomaly.multivariate.AssetT2): steady, non-suspect
    # samples learned before scoring, model half-life while healthy (samples), limit margins
    # and how long a statistic must stay over its limit before it counts.
    t2_learn: int = 1800
    t2_halflife: float = 3600.0
    t2_margin: float = 10.0      # wide: a move of the operating point is not a fault
    spe_margin: float = 3.0
    t2_duration_s: float = 120.0
    # Vibration bursts (``extra["spectral"]``, the worker's bearing check) as the witness of a
    # vibration sensor: while the latest burst's strongest bearing-defect band has risen less
    # than this fraction of its alarm rise (log scale), the bearing is healthy, and a vibration
    # channel over its threshold with no other channel of the asset above half of its own is
    # a drifting sensor (device problem "sensor drift"), not bearing wear.
    burst_healthy_ratio: float = 0.5
    # A vibration rise the bursts contradict is no equipment evidence at once, and a device
    # problem ("sensor drift") once it has lasted this long (a passing load step is neither).
    drift_hold_s: float = 60.0
    # A witness (``ChannelSpec.witnesses``) holds steady while its short-baseline ratio (z over
    # `z_limit`) stays below this; the witnessed channel has changed suddenly at a ratio of 1.
    witness_steady_ratio: float = 0.5
    # T² / SPE is corroborating evidence only: it joins an asset's score where the channels
    # (or another source, such as the bursts) already stand at this fraction of their
    # threshold. Alone it opened only false alerts on the demo fleet (an operating point
    # outside the learned one: load swings after 30 min of learning) and caught nothing the
    # channels miss on the single-fault suite.
    t2_support_ratio: float = 0.5
    # Calibrated channel scores (anomaly.likelihood): each channel's raw evidence (its adaptive
    # detectors' score) becomes the anomaly likelihood of its recent values under the channel's
    # own long-run distribution, so one threshold means the same on every channel. Limits stay
    # absolute (a limit is a fact about the machine, not a surprise). Recent mean and long-run
    # half-lives in samples of the grid, warm-up in valid samples; spread floor in score units;
    # the tail probability 10**-decades scores 1. The recent mean is the newest sample itself
    # (half-life 1) unless a data set's settings say otherwise: chosen on the simulator's fleet
    # watched without its equipment profiles (`aftercare anomaly scenarios --no-models`),
    # where a half-life of 5 caught 10 of 19 equipment faults and 1 caught 15, with the same
    # false alerts (bench/README.md); a step far outside a channel's history is news at once.
    # The long-run half-life is a day of 1 s samples: long enough to hold each daily rhythm
    # of a machine nobody described (its morning load, its shift change), so that the next
    # day's is no surprise; chosen on the simulator's scenarios after a day and a half of
    # history (2000 samples, half an hour, forgot the night by the morning).
    calibrate: bool = False
    likelihood_short: float = 1.0
    likelihood_long: float = 86400.0
    likelihood_warmup: int = 300
    likelihood_min_std: float = 0.02
    likelihood_decades: float = 10.0
    # Self-calibrating seasonality for channels no model describes (with `calibrate`): every
    # channel also gets a per-time-of-day baseline (`seasonal_slots` a day, half-life and
    # warm-up in samples of a slot), calibrated on its own. Its calibrated score counts as it
    # is (a missing daily peak deviates from the time of day only); the plain baseline's only
    # where the time-of-day z (in long-run standard deviations) is above `seasonal_support`
    # or not known yet (a daily peak deviates from the plain baseline only: it is the cycle).
    seasonal: bool = False
    seasonal_slots: int = 48
    seasonal_halflife: float = 10.0
    seasonal_warmup: int = 3
    seasonal_support: float = 1.0
    # ... unless the plain baseline's own calibrated z (in long-run standard deviations) is at
    # or above `seasonal_override`: a deviation that extreme is not the cycle (inf: never).
    seasonal_override: float = float("inf")
    # > 0 (with `seasonal`): once a channel has been seen this long (seconds), a second
    # time-of-day baseline with weekends apart (`anomaly.seasonal.WeekdayChoice`) replaces the
    # daily one for it where its errors so far are `seasonal_weekly_margin` below the daily
    # one's: a working week's rhythm, learned only when there are weekends enough to learn it.
    seasonal_weekly_s: float = 0.0
    seasonal_weekly_margin: float = 0.1
    # > 0 (with `calibrate`): a change against the recent past is a third calibrated source:
    # the z-score against a short-memory baseline (this half-life in samples) or the CUSUM
    # score, whichever is larger (a level shift the slow baseline absorbs only gradually, a
    # slow drift). The CUSUM counts here whatever the spec's `drift` says: calibration judges
    # it against the channel's own history. Gated by the time of day like the plain baseline.
    change_halflife: float = 0.0
    # > 0 (with `calibrate`): routine excursions are no news (anomaly.likelihood.Recurrence): a
    # channel's calibrated score is capped below the lowest level it has already reached in
    # this many separate, finished excursions (decayed with `recurrence_halflife` samples), so
    # a load spike that comes back every few hours alerts the first times, not every time.
    # On by default for channels no model describes, with a day's memory: a machine's
    # routine (a CNC program's heavy cut, a restart) is news the first times only. Chosen on
    # the scenarios without models after 1.5 days of history, development seeds +0 and +3000:
    # 4 excursions kept every catch there (88 -> 64 false alerts on +3000), 2 lost two.
    recurrence_count: float = 4.0
    recurrence_halflife: float = 86400.0
    # > 0 (with `calibrate`): a change in how the channel moves is a fourth calibrated source
    # (anomaly.spread.SpreadChange): its recent mean square step (this half-life in samples)
    # against its long-run one (`likelihood_long`), so bursts that stop, or noise that grows,
    # count even where no value leaves its usual range. Gated by the time of day like the
    # plain baseline.
    spread_halflife: float = 0.0
    # Severity: adaptive (learned-behaviour) evidence scores at most `adaptive_max_score`,
    # below the alert trackers' critical level (0.8): a warning; a limit that fires scores
    # `limit_score` (critical), as may the per-asset checks (bearing bursts, T² / SPE) far past
    # their thresholds. Every device problem scores `device_problem_score` (a warning). A
    # device is offline when silent for more than `offline_intervals` of its own learned
    # reporting intervals (and at least `offline_min_s`).
    adaptive_max_score: float = 0.75
    limit_score: float = 0.85
    device_problem_score: float = 0.6
    offline_intervals: float = 3.0
    # A machine no model describes, seen at rest this long, has stopped (see `update`).
    inferred_stop_s: float = 300.0
    # A channel no model describes learns for this long from its first scored reading (its
    # machine running) before what it learned counts as evidence: with no model to say what
    # is normal, normal is only known from history, and a day holds one of every daily
    # rhythm (a building's morning load, a shift start), which otherwise opened most of the
    # generic channels' false alerts. Device checks (silence, stuck, out of range) need no
    # history and run from the start. 0: no learning period.
    generic_learn_s: float = 86400.0
    # The raw evidence the likelihood calibrates: the detector ratio through `ratio_to_score`
    # (bounded: a ratio of 80 is 1.0, one of 2 is 0.75) or, with this, log(1 + ratio)
    # (unbounded: a vibration five times its level is news even on a channel whose ratio
    # often reaches 2).
    likelihood_log: bool = True
    # > 0: a channel no model describes is also measured against its long-run envelope, the
    # mean and spread of its values over this half-life (samples), which a stop does not
    # reset: a vibration four times anything in its history is news however slowly it got
    # there (the short baseline follows a slow rise, and the frozen CUSUM reference of a
    # machine whose operating point wanders is saturated long before any fault).
    # Chosen on the scenarios after 1.5 days of history, seed +0: 6 h (18/19 caught, 17 false
    # alerts) over a day (18/19, 18) and off (10/19, 17); bench/README.md has the held-out.
    envelope_halflife: float = 21600.0
    # After a stop (and the restart hold), a channel no model describes is no evidence while
    # it is still converging back to where it ran before the stop: a restart's transient (a
    # chiller pulling its water down from the temperature it warmed to while stopped, for
    # longer than `restart_hold_s`; no model says how long it takes) is not a fault, and is
    # not learned as normal either. Its value, smoothed (half-life `settle_smooth_s`
    # samples), is compared with its envelope's mean in long-run standard deviations; it
    # has settled once that distance is below `envelope_settled_z`, or no longer falls
    # (against its own running mean over `settle_trend_s`, by more than `settle_margin`): a
    # value that stays away or moves further away is judged, not waited for (a machine
    # restarted with its fault). `settle_max_s` of steady running bounds the wait.
    # `settle_trend_s` was 120 s, chosen on machines that run around the clock; a machine
    # that stops every night restarts cold, and its coolant or oil warms over an hour (a
    # CNC's coolant 12 -> 16 C in the first half hour): over 2 minutes that climb looked
    # flat, the channel counted as settled 30 min after the restart, 6 C below its running
    # level, and opened "overheating" (`aftercare anomaly scenarios --schedule one_shift
    # --no-models`, development seeds: 16 and 8 false alerts). Over 10 minutes it is still
    # seen converging: 0 and 0, with every fault caught as before (bench/README.md).
    envelope_settled_z: float = 0.5
    settle_smooth_s: float = 60.0
    settle_trend_s: float = 600.0
    settle_margin: float = 0.1
    settle_max_s: float = 3600.0
    # > 0: operating regimes of machines no model describes (anomaly.multivariate.
    # OperatingRegime). Each such asset's channels (up to REGIME_WIDTH, counters left out)
    # are related to each other, sample by sample, by a linear model learned from its own
    # steady, unalerted history (`regime_learn` samples, then half-life `regime_halflife`);
    # a channel whose adaptive evidence the asset's other channels explain (its conditional
    # z, the residual from what they predict in units of that prediction's spread, at most
    # `regime_support`) is the machine's program (a CNC spindle's speed step raising its
    # vibration and current), not a fault. Limits are not gated. 0: off.
    regime_support: float = 3.0
    # ... and, with this, a broken relation is evidence of its own: the conditional z, as
    # log(1 + |z| / z_limit), calibrated against its own history like the other sources (a
    # current 6 A higher at the same speed, within the range the program moves it through).
    regime_evidence: bool = True
    # The evidence is the conditional z smoothed over this half-life (samples): a relation
    # broken for a moment (a sensor's spike, a lag at a speed step) is not a broken machine.
    regime_smooth_s: float = 30.0
    # ... and counts once the smoothed conditional z has stayed beyond `regime_support` this
    # long (seconds): a sensor that freezes or starts spiking breaks the relation at once,
    # and is named by the sensor checks (`stuck_s`) before its readings could be taken for
    # a machine's fault.
    regime_hold_s: float = 180.0
    regime_learn: int = 3600
    regime_halflife: float = 86400.0
    # > 0 (with the operating regimes): a slow fault's anchor (anomaly.multivariate.
    # RegimeAnchor). The regime keeps learning, so a fault that grows over half a day without
    # opening an alert is learned as it grows (a spindle's vibration rising sixfold over
    # 12.5 h: its conditional z climbed to 4.9, then fell back). Each asset's regime is also
    # kept as it stood every `anchor_period_s` (`anchor_slots` kept, newest first; only once
    # it has learned `anchor_min_learned` samples, and only where no equipment alert was
    # open since the last one), and its channels are scored against the newest snapshot at
    # least `anchor_lag_s` old: the residual from what the snapshot's regression predicts,
    # in units of the channel's own spread in that snapshot (how far on the scale the channel
    # moves through, not how surprising: a tightly explained temperature's conditional z
    # against an older model is large for a change of weather). Not calibrated against its
    # own history, which would learn the fault too: a channel counts where that residual,
    # smoothed over `anchor_smooth_s` samples, has stayed beyond `anchor_level` for
    # `anchor_hold_s` seconds (a paused machine keeps the count), and scores
    # ratio_to_score(|residual| / anchor_level), after the recurrence cap (a slow fault is
    # one long excursion, not routine). Chosen on the scenarios without models after 1.5
    # days of history, development seeds +0 and +3000, faults 10x slower and at their pace:
    # the healthy machines' smoothed residual reached at most 2.09 after their learning day,
    # the three slow faults the other detectors miss 7.8 (bearing), 10.3 (compressor
    # cooling), 54 (cavitation); `anchor_level` 4 is about twice the healthy maximum. A lag of
    # a day with half a day learned first left no reference in time for the spindle's
    # bearing (the history is 1.5 days); 12 h with 6 h learned caught it. 0: off.
    anchor_lag_s: float = 43200.0
    anchor_period_s: float = 10800.0
    anchor_slots: int = 8
    anchor_min_learned: float = 21600.0
    anchor_level: float = 4.0
    anchor_smooth_s: float = 600.0
    anchor_hold_s: float = 1800.0
    offline_min_s: float = 30.0


@dataclass(frozen=True)
class BankResult:
    """One block's output: per-channel detector ratios (1 = threshold), per-asset scores."""

    limit: NDArray[np.float64]
    baseline: NDArray[np.float64]
    baseline_mean: NDArray[np.float64]
    cusum: NDArray[np.float64]
    health: HealthResult
    channel_score: NDArray[np.float64]
    asset_score: NDArray[np.float64]
    asset_mode: NDArray[np.int64]
    device_score: NDArray[np.float64]
    device_mode: NDArray[np.int64]
    equipment_events: list[Transition] = field(default_factory=list)
    device_events: list[Transition] = field(default_factory=list)
    # Per-asset evidence beyond the channels, (assets, T): the multivariate ratios (1 = alarm
    # threshold; NaN while learning or without a group), the bank row of the channel that
    # contributes most (-1: none), and every `extra` detector's score as fused.
    t2: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    spe: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    mv_row: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    extra_score: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    # Per channel and sample: has a device problem (any of DEVICE_PROBLEMS, including a
    # drifted sensor found at rest or by the bursts), the channels a device alert is about.
    device_channel: NDArray[np.bool_] = field(default_factory=lambda: np.zeros((0, 0), bool))


class DetectorBank:
    """All detectors of a fleet; channels can be added as devices appear.

    Examples
    --------
    >>> specs = [ChannelSpec("pump-1", "temp_c", high=95, clear_high=90, duration_s=5),
    ...          ChannelSpec("pump-1", "flow_l_min"), ChannelSpec("pump-2", "temp_c")]
    >>> bank = DetectorBank(specs, BankConfig(clear_hold_s=5))
    >>> rng = np.random.default_rng(42)
    >>> x = rng.normal([[70.0], [30.0], [70.0]], 0.5, (3, 600))
    >>> x[0, 400:] += 29.0                      # pump-1 overheats from t = 400 s on
    >>> r = bank.update(np.arange(600, dtype=np.int64) * 1_000_000, x)
    >>> [(e.asset, e.state, e.severity, bank.modes[e.mode]) for e in r.equipment_events]
    [(0, 'open', 'critical', 'overheating')]

    Critical because the high limit fires by the time the rise has persisted long enough to
    open an alert: past the healthy envelope. A deviation from learned behaviour alone would
    be a warning.
    """

    def __init__(self, specs: Sequence[ChannelSpec] = (), config: BankConfig | None = None) -> None:
        self.config = config or BankConfig()
        c = self.config
        self.specs: list[ChannelSpec] = []
        self.assets: list[str] = []
        self.modes: list[str] = [UNKNOWN_MODE]
        self.limit = LimitRule(0)
        self.baseline = EwmaBaseline(0, halflife=c.baseline_halflife, warmup=c.baseline_warmup,
                                     var_halflife=c.baseline_var_halflife,
                                     var_clip=c.baseline_var_clip)
        self.daily = EwmaBaseline(0, halflife=c.baseline_halflife, warmup=c.baseline_warmup,
                                  slots_per_day=96, var_halflife=c.baseline_var_halflife,
                                  var_clip=c.baseline_var_clip)
        self.cusum = Cusum(0, k=c.cusum_k, h=c.cusum_h, warmup=c.cusum_warmup,
                           z_clip=2 * c.cusum_k)
        self.health = SensorHealth(0, stuck_s=c.stuck_s, no_data_s=c.no_data_s)
        self.equipment = AlertTracker(0, clear_hold_s=c.clear_hold_s)
        self.device = AlertTracker(0, clear_hold_s=c.clear_hold_s)
        self.running = RunState(0, restart_hold_s=c.restart_hold_s, limit_hold_s=c.limit_hold_s,
                                open_hold_s=c.open_hold_s)
        self.suspect = Suspect(0, hold_s=c.suspect_s)
        self.t2 = AssetT2(0, learn=c.t2_learn, halflife=c.t2_halflife, t2_margin=c.t2_margin,
                          spe_margin=c.spe_margin, duration_s=c.t2_duration_s)
        self.last_on = LastTrue(0)
        self.last_awake = LastTrue(0)
        self.rest = Latch(0)
        self.run_level = RunLevel(0)
        self.first_seen = FirstTrue(0)
        self.smoother = Smoother(0)
        self.offset = RestOffset(0)
        self.burst_drift = Latch(0, hold_s=c.drift_hold_s)
        self.last_moving = LastTrue(0)
        self.silence = ReportingSilence(0, intervals=c.offline_intervals,
                                        min_silence_s=c.offline_min_s)
        self.counters = CounterLearner(0)
        self.seasonal = EwmaBaseline(0, halflife=c.seasonal_halflife, warmup=c.seasonal_warmup,
                                     slots_per_day=c.seasonal_slots,
                                     var_halflife=c.baseline_var_halflife,
                                     var_clip=c.baseline_var_clip)
        self.weekly = EwmaBaseline(0, halflife=c.seasonal_halflife, warmup=c.seasonal_warmup,
                                   slots_per_day=c.seasonal_slots, weekend_split=True,
                                   var_halflife=c.baseline_var_halflife,
                                   var_clip=c.baseline_var_clip)
        self.weekday = WeekdayChoice(0, after_s=c.seasonal_weekly_s or 1.0,
                                     margin=c.seasonal_weekly_margin)
        self.change = EwmaBaseline(0, halflife=c.change_halflife if c.change_halflife > 0
                                   else 1.0, warmup=c.baseline_warmup,
                                   var_halflife=c.baseline_var_halflife,
                                   var_clip=c.baseline_var_clip)
        (self.likelihood, self.likelihood_seasonal, self.likelihood_change,
         self.likelihood_spread, self.likelihood_envelope, self.likelihood_regime) = (
            AnomalyLikelihood(0, short=c.likelihood_short, long=c.likelihood_long,
                              warmup=c.likelihood_warmup, min_std=c.likelihood_min_std,
                              decades=c.likelihood_decades) for _ in range(6))
        self.settled = Latch(0)
        self.settle_smoother = Smoother(0)
        self.settle_trend = Smoother(0)
        self.last_unsteady = LastTrue(0)
        self.envelope = EwmaBaseline(0, halflife=c.envelope_halflife
                                     if c.envelope_halflife > 0 else 1.0,
                                     warmup=c.baseline_warmup)
        self.spread = SpreadChange(0, short=c.spread_halflife if c.spread_halflife > 0
                                   else 1.0, long=c.likelihood_long,
                                   warmup=c.likelihood_warmup)
        self.regime = OperatingRegime(0, learn=c.regime_learn, halflife=c.regime_halflife)
        self.regime_smoother = Smoother(0)
        self.regime_calm = LastTrue(0)
        self.anchor = RegimeAnchor(0, lag_s=c.anchor_lag_s if c.anchor_lag_s > 0 else 1.0,
                                   period_s=c.anchor_period_s, slots=c.anchor_slots,
                                   learn=c.regime_learn, min_learned=c.anchor_min_learned)
        self.anchor_smoother = Smoother(0)
        self.anchor_calm = LastTrue(0)
        self.recurrence = Recurrence(0, count=c.recurrence_count if c.recurrence_count > 0
                                     else 1.0, halflife=c.recurrence_halflife,
                                     min_duration_s=c.open_hold_s)
        self._index()
        self.add(specs)

    # ----------------------------------------------------------------- channels
    def _index(self) -> None:
        asset_idx = np.array([self.assets.index(s.asset) for s in self.specs], np.int64)
        self.asset_of = asset_idx
        self.mode_of = np.array([self.modes.index(_mode(s)) for s in self.specs], np.int64)
        self.scored = np.array([s.scored for s in self.specs], bool)
        self.drift_on = np.array([s.drift for s in self.specs], bool)
        self.calibrated = np.array([self.config.calibrate or s.generic for s in self.specs],
                                   bool)
        self.generic = np.array([s.generic for s in self.specs], bool)
        self.generic_rows = np.flatnonzero(self.generic)
        self.steps = np.array([s.steps for s in self.specs], bool)
        self.side = np.array([s.side for s in self.specs], np.int64)
        self.vibration = np.array([np.isfinite(s.idle_max) for s in self.specs], bool)
        where = {(s.asset, s.metric): i for i, s in enumerate(self.specs)}
        # Witnesses of each channel: bank rows, -1 padded (a witness not sent is left out).
        self.witness_rows = np.full((len(self.specs), max([len(s.witnesses)
                                                            for s in self.specs], default=0)),
                                    -1, np.int64)
        for i, s in enumerate(self.specs):
            for k, m in enumerate(s.witnesses):
                self.witness_rows[i, k] = where.get((s.asset, m), -1) if m != s.metric else -1
        self.witnessed = (self.witness_rows >= 0).any(axis=1)
        tr = [(i, s, [where.get((s.asset, m), -1) for m in s.partners])
              for i, s in enumerate(self.specs) if s.transform]
        tr = [(i, s, p) for i, s, p in tr if min(p, default=0) >= 0]
        self.transforms = [(s.transform, np.array([i for i, t, _ in tr if t.transform
                                                   == s.transform], np.int64),
                            np.array([p for _, t, p in tr if t.transform == s.transform],
                                     np.int64).reshape(-1, len(s.partners)))
                           for s in {t.transform: t for _, t, _ in tr}.values()]
        run = [(i, s) for i, s in enumerate(self.specs) if np.isfinite(s.run_level)]
        # One running indicator per asset (the first such channel); others are ignored.
        first: dict[int, tuple[int, float]] = {}
        for i, s in run:
            first.setdefault(int(asset_idx[i]), (i, s.run_level))
        self.run_assets = np.array(sorted(first), np.int64)
        self.run_rows = np.array([first[a][0] for a in sorted(first)], np.int64)
        self.run_levels = np.array([first[a][1] for a in sorted(first)], np.float64)
        self.daily_rows = np.array([i for i, s in enumerate(self.specs) if s.daily], np.int64)
        self.smooth_rows = np.array([i for i, s in enumerate(self.specs) if s.smooth_s > 0],
                                    np.int64)
        # Multivariate group of each asset: bank rows in GROUP_WIDTH slots (-1: empty slot).
        self.mv_rows = np.full((len(self.assets), GROUP_WIDTH), -1, np.int64)
        self.mv_log = np.zeros((len(self.assets), GROUP_WIDTH), bool)
        for i, s in enumerate(self.specs):
            if s.multivariate not in ("", "linear", "log"):
                raise ValueError(f"{s.asset}/{s.metric}: `multivariate` must be '', 'linear' "
                                 f"or 'log', got {s.multivariate!r}")
            slots = self.mv_rows[asset_idx[i]]
            free = np.flatnonzero(slots < 0)
            if s.multivariate and free.size:          # a group wider than the slots is cut
                slots[free[0]] = i
                self.mv_log[asset_idx[i], free[0]] = s.multivariate == "log"
        # Operating-regime slots of each asset: its generic rows, -1 padded (cut past the width).
        self.regime_rows = np.full((len(self.assets), REGIME_WIDTH), -1, np.int64)
        for row in self.generic_rows:
            slots = self.regime_rows[asset_idx[row]]
            free = np.flatnonzero(slots < 0)
            if free.size:
                slots[free[0]] = row
        # Slots fill from the first: the model only looks at as many as some asset fills.
        self.regime_width = int((self.regime_rows >= 0).sum(axis=1).max(initial=0))
        self._order = np.argsort(asset_idx, kind="stable")
        sorted_assets = asset_idx[self._order]
        self._starts = np.flatnonzero(np.r_[True, sorted_assets[1:] != sorted_assets[:-1]]) \
            if sorted_assets.size else np.zeros(0, np.int64)
        self._group = sorted_assets[self._starts] if sorted_assets.size else self._starts

    def add(self, specs: Sequence[ChannelSpec]) -> None:
        """Append channels (a new device or metric); their detectors start fresh."""
        specs = [s for s in specs if (s.asset, s.metric) not in self.keys()]
        if not specs:
            return
        n = len(specs)
        new_assets = [a for a in dict.fromkeys(s.asset for s in specs) if a not in self.assets]
        self.assets += new_assets
        for s in specs:
            mode = _mode(s)
            if mode not in self.modes:
                self.modes.append(mode)
        col = {k: np.array([getattr(s, k) for s in specs], np.float64)
               for k in ("high", "low", "duration_s", "phys_min", "phys_max", "min_std")}
        chi = np.array([s.high if s.clear_high is None else s.clear_high for s in specs])
        clo = np.array([s.low if s.clear_low is None else s.clear_low for s in specs])
        self.limit.add_channels(n, high_level=col["high"], clear_high_level=chi,
                                low_level=col["low"], clear_low_level=clo,
                                duration_us=np.round(col["duration_s"] * 1e6).astype(np.int64))
        self.baseline.add_channels(n, min_std=col["min_std"])
        self.daily.add_channels(n, min_std=col["min_std"])
        self.cusum.add_channels(n, min_std=col["min_std"])
        if self.config.envelope_halflife > 0:
            self.envelope.add_channels(n, min_std=col["min_std"])
            self.likelihood_envelope.add_channels(n)
            self.settled.add_channels(n)
            self.settle_smoother.add_channels(
                n, alpha=_alpha(self.config.settle_smooth_s, n))
            self.settle_trend.add_channels(n, alpha=_alpha(self.config.settle_trend_s, n))
        inf = np.iinfo(np.int64).max
        self.health.add_channels(
            n, phys_min=col["phys_min"], phys_max=col["phys_max"],
            stuck_us=np.where([s.stuck for s in specs],
                              inf if np.isinf(self.config.stuck_s)
                              else int(self.config.stuck_s * 1e6), inf).astype(np.int64),
            no_data_us=np.full(n, inf if np.isinf(self.config.no_data_s)
                               else int(self.config.no_data_s * 1e6), np.int64))
        self.equipment.add_channels(len(new_assets))
        self.device.add_channels(len(new_assets))
        self.running.add_channels(len(new_assets))
        self.last_on.add_channels(len(new_assets))
        self.last_awake.add_channels(len(new_assets))
        self.rest.add_channels(len(new_assets))
        self.last_moving.add_channels(len(new_assets))
        self.last_unsteady.add_channels(len(new_assets))
        self.silence.add_channels(len(new_assets))
        self.suspect.add_channels(n)
        self.run_level.add_channels(n)
        self.counters.add_channels(n)
        self.offset.add_channels(n, idle_max=[s.idle_max for s in specs])
        self.burst_drift.add_channels(n)
        self.smoother.add_channels(n, alpha=_alpha([s.smooth_s if s.smooth_s > 0 else 1.0
                                                    for s in specs], n))
        self.t2.add_channels(len(new_assets))
        self.regime.add_channels(len(new_assets))
        if self._anchored:
            self.anchor.add_channels(len(new_assets))
        if self.config.regime_support > 0 and self.config.regime_evidence:
            self.likelihood_regime.add_channels(n)
            self.regime_smoother.add_channels(n, alpha=_alpha(self.config.regime_smooth_s, n))
            self.regime_calm.add_channels(n)
        if self._anchored:
            self.anchor_smoother.add_channels(n, alpha=_alpha(self.config.anchor_smooth_s, n))
            self.anchor_calm.add_channels(n)
        self.likelihood.add_channels(n)
        self.first_seen.add_channels(n)
        self.likelihood_seasonal.add_channels(n)
        self.likelihood_change.add_channels(n)
        self.recurrence.add_channels(n)
        if self.config.seasonal:          # (channels, slots) sums: only kept when used
            self.seasonal.add_channels(n, min_std=col["min_std"])
            if self.config.seasonal_weekly_s > 0:
                self.weekly.add_channels(n, min_std=col["min_std"])
                self.weekday.add_channels(n)
        if self.config.change_halflife > 0:
            self.change.add_channels(n, min_std=col["min_std"])
        if self.config.spread_halflife > 0:
            self.spread.add_channels(n)
            self.likelihood_spread.add_channels(n)
        self.specs += specs
        self._index()

    @property
    def _anchored(self) -> bool:
        c = self.config
        return c.regime_support > 0 and c.anchor_lag_s > 0

    def keys(self) -> list[tuple[str, str]]:
        """(asset, metric) of every channel, in row order."""
        return [(s.asset, s.metric) for s in self.specs]

    @property
    def channels(self) -> int:
        return len(self.specs)

    # ---------------------------------------------------------------- streaming
    def update(self, times: ArrayLike, values: ArrayLike,
               extra: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None) -> BankResult:
        """Process one block: `times` int64 µs (T,), `values` (channels, T), NaN = no data.

        `extra` adds per-asset evidence from outside the bank (the worker's spectral check):
        detector name -> (score (assets, T) in [0, 1], NaN = none; failure-mode index into
        :attr:`modes` (assets, T), see :meth:`mode_index`). It is fused like the multivariate
        score: the asset's score is the largest, and the failure mode the strongest source's.
        """
        x = as_block(values, name="values", channels=self.channels)
        t = as_times(times, name="times", length=x.shape[1])
        c = self.config
        n_a = len(self.assets)
        raw_x = x
        health = self.health.update(t, x)
        counter = np.zeros(x.shape, bool)
        if self.generic_rows.size:
            # With no equipment model to name the channel that says whether the machine runs,
            # nor its counters: a reading resting at exactly zero is a machine at rest (a
            # current, a speed, a flow of a stopped machine), and a counter standing still
            # (running hours) one that stopped, not a frozen sensor. A counter's level is no
            # evidence about the machine's condition either.
            counts = self.counters.update(t, x)
            counter[self.generic_rows] = counts.counter[self.generic_rows]
            # A channel that has hardly ever changed is a constant (a setpoint), not stuck.
            calm = np.zeros(x.shape, bool)
            calm[self.generic_rows] = (x[self.generic_rows] == 0.0) \
                | ~counts.moved[self.generic_rows]
            health = HealthResult(health.stuck & ~calm & ~counter, health.out_of_range,
                                  health.spike, health.no_data)
        if self.steps.any():
            # A CNC program can hold a speed for a single second: not a spike, and neither is
            # what the other channels of that machine do in the same second.
            blip = np.where(health.spike & self.steps[:, None], 1.0, 0.0)
            explained = reduce_max(blip, self._order, self._starts, n_a, self._group) > 0
            health = HealthResult(health.stuck, health.out_of_range,
                                  health.spike & ~self.steps[:, None]
                                  & ~explained[self.asset_of], health.no_data)
        ind = np.full((n_a, x.shape[1]), np.nan)
        if self.run_rows.size:
            rv = x[self.run_rows]
            ind[self.run_assets] = np.where(np.isnan(rv), np.nan,
                                            rv > self.run_levels[:, None])
        resting = None
        if self.generic_rows.size and x.shape[1]:
            # No model names the machine's running indicator: it is at rest where two or more
            # of its channels collapse to near zero against their running level (current,
            # speed, flow of a stopped machine), and runs where two or more stand at a fair
            # part of it. At rest its unnamed channels are no evidence at once (the stop is not
            # a fault); a rest that lasts `inferred_stop_s` is a stop (a pause between jobs is
            # not, or a machine that cycles would never be steady). Once at rest it stays at
            # rest until none of its channels is near zero: a lone second in which one
            # channel's noise rises past the near-zero bound is still the stopped machine (it
            # opened false alerts).
            unnamed = np.isnan(ind).all(axis=1, keepdims=True)
            stopped, running, woken = self._inferred_running(x, n_a)
            stopped = self.rest.update(stopped, woken)
            awake = self.last_awake.update(t, ~stopped)
            long_stop = stopped & (t[None, :] - awake >= int(c.inferred_stop_s * 1e6))
            ind = np.where(unnamed, np.where(long_stop, 0.0, np.where(running, 1.0, np.nan)),
                           ind)
            resting = unnamed & stopped
            jumps = self._machine_jumps(health.spike, stopped, n_a)
            if jumps.any():
                health = HealthResult(health.stuck, health.out_of_range, health.spike & ~jumps,
                                      health.no_data)
        on, steady = self.running.steady(t, ind)
        last_on = self.last_on.update(t, on) if on.shape[1] else np.zeros(on.shape, np.int64)
        # A machine at rest (its running indicator low for limit_hold_s) does not vibrate: a
        # vibration sensor that still reads more than `idle_max` has drifted (an offset), a
        # device problem, latched until a later stop shows it back at rest.
        still = ind == 0
        moved = self.last_moving.update(t, ~still) if on.shape[1] else last_on
        at_rest = still & (t[None, :] - moved >= int(round(c.limit_hold_s * 1e6)))
        offset = self.offset.update(t, x, at_rest[self.asset_of] if self.channels
                                    else np.zeros(x.shape, bool))
        problem = health.any() | offset
        with np.errstate(invalid="ignore"):     # a stop showing the sensor at rest: it is fine
            rest_ok = (at_rest[self.asset_of] if self.channels else np.zeros(x.shape, bool)) \
                & (x <= self.offset.idle_max[:, None])
        # A sensor that just had a problem (stuck, spikes, out of range, silent, offset) stays
        # suspect for a while: its readings neither teach the baselines nor count as equipment
        # evidence (a stuck sensor that comes back jumps to where the process has gone meanwhile).
        suspect = self.suspect.update(t, problem)
        x = np.where(suspect, np.nan, x)
        gone = np.isnan(x)          # no reading, or one from a suspect sensor
        mv_src = x          # raw (untransformed) values for the multivariate block below
        if self.transforms:
            x = x.copy()
            raw = x.copy()
            for name, rows, partners in self.transforms:
                x[rows] = TRANSFORMS[name](raw[rows], *(raw[partners[:, k]]
                                                        for k in range(partners.shape[1])))
        # Stopped: nothing for the equipment detectors; just restarted: limits only (pressures,
        # vibration, currents settle in seconds), the adaptive detectors wait until temperatures
        # have settled too.
        if resting is not None:
            x = np.where(resting[self.asset_of], np.nan, x)
        x_on = np.where(on[self.asset_of], x, np.nan) if self.channels else x
        lim = self.limit.update(t, x_on).score
        x = np.where(steady[self.asset_of], x, np.nan) if self.channels else x
        if self.smooth_rows.size:
            # Smoothed from the restart on (limit hold), so it has warmed up when steady.
            sm = self.smoother.update(t, x_on[self.smooth_rows], self.smooth_rows)
            x[self.smooth_rows] = np.where(np.isnan(x[self.smooth_rows]), np.nan, sm)
        if c.envelope_halflife > 0 and self.generic_rows.size and x.shape[1]:
            # A channel no model describes feeds its adaptive detectors once it has settled
            # after a restart (see `envelope_settled_z`); its limits saw it already.
            x = np.where(self.generic[:, None] & ~self._settled(t, x, steady), np.nan, x)
        regime = self._regime(x, counter, gone) if c.regime_support > 0 else None
        base = self.baseline.update(t, x)
        z, mean = base.z, base.mean
        if self.daily_rows.size:
            d = self.daily.update(t, x[self.daily_rows])
            z[self.daily_rows], mean[self.daily_rows] = d.z, d.mean
        seasonal_z = None
        if c.seasonal and c.calibrate and self.channels:
            tod = self.seasonal.update(t, x)
            seasonal_z = tod.z
            if c.seasonal_weekly_s > 0:
                week = self.weekly.update(t, x)
                split = self.weekday.update(t, x, np.where(np.isnan(tod.z), np.nan, tod.mean),
                                            np.where(np.isnan(week.z), np.nan, week.mean),
                                            tod.std)
                seasonal_z = np.where(split[:, None] & ~np.isnan(week.z), week.z, seasonal_z)
            seasonal_z = np.where(np.isin(np.arange(self.channels), self.daily_rows)[:, None],
                                  np.nan, seasonal_z)
        side = self.side[:, None]
        base_ratio = np.where(side == 0, np.abs(z), np.maximum(side * z, 0.0)) / c.z_limit
        cu = self.cusum.update(t, x)
        if x.shape[1]:
            # A machine that is stopped or settling (a trip, a repair) starts its drift sums
            # afresh: what accumulated before the stop is not evidence about the restarted one.
            idle = ~steady[self.asset_of, -1]
            self.cusum.upper[idle], self.cusum.lower[idle] = 0.0, 0.0
        self._relearn_after_long_stop(t, on, last_on)
        drift = np.where(self.drift_on[:, None] & ((side == 0) | (cu.direction == side)),
                         cu.score, np.where(np.isnan(cu.score), np.nan, 0.0))
        drift = np.where(self.drift_on[:, None], drift, np.nan)
        # A sick sensor is a device problem: its readings are not evidence about the equipment;
        # neither is an operating input (a CNC program's speed steps are not faults).
        ratio = np.fmax(np.fmax(lim, base_ratio), drift)
        ignored = suspect | ~self.scored[:, None] | counter
        # Severity follows the failure mode's progress: a deviation from learned behaviour
        # alone says something changed, not how close the consequence is, and stays a warning;
        # past the equipment model's healthy envelope (a limit, held for its duration) the
        # failure mode is doing damage, and the alert is critical.
        lim_score = lim * c.limit_score            # the limit rule's score is 1, 0 or NaN
        chan = np.where(ignored, 0.0, np.fmax(lim_score, np.minimum(
            ratio_to_score(np.fmax(base_ratio, drift)), c.adaptive_max_score)))
        if self.calibrated.any():
            evidence = np.fmax(base_ratio, drift)
            adaptive = np.log1p(evidence) if c.likelihood_log else ratio_to_score(evidence)
            plain_raw = np.where(ignored, np.nan, adaptive)
            seen = self.first_seen.update(t, ~np.isnan(plain_raw))
            plain = self.likelihood.update(t, plain_raw)
            cal = plain.score
            if seasonal_z is not None:
                sr = ratio_to_score(np.abs(seasonal_z) / c.z_limit)
                sl = self.likelihood_seasonal.update(t, np.where(ignored, np.nan, sr))
                # A deviation from the plain baseline counts only where the time of day finds
                # the sample unusual too (else it is the cycle); one from the time of day alone
                # counts as it is (a missing daily peak).
                cyclic = sl.z <= c.seasonal_support
                if np.isfinite(c.seasonal_override):
                    cyclic &= ~(plain.z >= c.seasonal_override)
                cal = np.fmax(sl.score, np.where(~cyclic, cal, 0.0))
            else:
                cyclic = np.zeros(x.shape, bool)
            if c.change_halflife > 0:
                fz = self.change.update(t, x).z
                cr = ratio_to_score(np.fmax(np.abs(fz) / c.z_limit, cu.score))
                cc = self.likelihood_change.update(t, np.where(ignored, np.nan, cr)).score
                cal = np.fmax(cal, np.where(cyclic, 0.0, cc))
            if c.spread_halflife > 0:
                sp = self.spread.update(t, x)
                cs = self.likelihood_spread.update(t, np.where(ignored, np.nan, sp)).score
                cal = np.fmax(cal, np.where(cyclic, 0.0, cs))
            if c.envelope_halflife > 0 and self.generic_rows.size:
                # Calibrated on its own: a saturated CUSUM must not drown it in the max.
                ez = self.envelope.update(t, x).z
                er = np.where(self.generic[:, None] & ~ignored,
                              np.log1p(np.abs(ez) / c.z_limit), np.nan)
                cal = np.fmax(cal, self.likelihood_envelope.update(t, er).score)
            if regime is not None:
                # What the asset's other channels explain is its operating regime.
                cal = np.where(regime.explained, 0.0, cal)
                if c.regime_evidence:
                    g = self.generic_rows
                    zs = np.full(x.shape, np.nan)
                    zs[g] = self.regime_smoother.update(t, regime.z[g], g)
                    rr = np.where(ignored, np.nan, np.log1p(np.abs(zs) / c.z_limit))
                    cr = self.likelihood_regime.update(t, rr).score
                    with np.errstate(invalid="ignore"):
                        calm = self.regime_calm.update(t, ~(np.abs(zs) > c.regime_support))
                    young = t[None, :] - calm < int(round(c.regime_hold_s * 1e6))
                    cal = np.fmax(cal, np.where(young, 0.0, cr))
            if c.recurrence_count > 0:
                cal = self.recurrence.update(t, cal)
            if regime is not None and self._anchored and t.size:
                # After the recurrence cap: a slow fault is one long excursion, not routine.
                cal = np.fmax(cal, self._anchor_score(t, regime, ignored))
            if c.generic_learn_s > 0 and self.generic_rows.size:
                learning = self.generic[:, None] & (t[None, :] - seen
                                                    < int(round(c.generic_learn_s * 1e6)))
                cal = np.where(learning & ~np.isnan(cal), 0.0, cal)
            chan = np.where(~self.calibrated[:, None], chan,
                            np.where(ignored, 0.0, np.fmax(lim_score,
                                                           np.minimum(cal, c.adaptive_max_score))))
        checked = self._check_extra(extra, x.shape[1])
        contradicted, drifted = self._sensor_drift(t, ratio, base_ratio, np.abs(z) / c.z_limit,
                                                   chan, checked.get("spectral"), rest_ok)
        chan = np.where(contradicted | drifted, 0.0, chan)
        def strongest(val: NDArray[np.float64], label: NDArray[np.int64]
                      ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
            return reduce_argmax(val, label, self._order, self._starts, n_a, self._group)

        # Failure mode: the mode of the strongest channel of the asset at that sample.
        best, mode = strongest(np.nan_to_num(chan, nan=0.0), self.mode_of)
        asset = np.maximum(best, 0.0)
        # ---- Multivariate and extra per-asset evidence (T² / SPE, spectral), fused here. ----
        # The T² / SPE of each asset's correlated group sees only what the adaptive detectors
        # see (steady, non-suspect samples); its failure mode is that of the channel that
        # contributes most. Extra scores come from the caller. Each joins with fmax, and takes
        # the failure mode where it is the strongest source of the asset's score.
        if drifted.any() and self.mv_rows.size:
            # A sensor of the group found drifted: the group's model learned from it while it
            # drifted (slowly enough to be followed), so the sensor put right would break it.
            # It is learned afresh, as after a long stop.
            self.t2.reset(((self.mv_rows >= 0)
                           & drifted[np.maximum(self.mv_rows, 0)].any(axis=2)).any(axis=1))
        mv = self._multivariate(t, np.where(steady[self.asset_of], mv_src, np.nan)
                                if self.channels else mv_src)
        if on.shape[1] and np.isfinite(c.relearn_stop_s):
            # Back from a long stop (a trip and repair): the group is learned afresh, as the
            # adaptive baselines are (the restart hold keeps the reset before its next sample).
            self.t2.reset(np.any(~on & (t[None, :] - last_on >= c.relearn_stop_s * 1e6),
                                 axis=1))
        sources = dict(checked)
        sources["t2"] = (ratio_to_score(np.fmax(mv.t2, mv.spe)), mv.mode)    # last: see below
        extra_score: dict[str, NDArray[np.float64]] = {}
        for name, (s_score, s_mode) in sources.items():     # a handful of sources, not samples
            extra_score[name] = s_score
            gated = s_score
            if name == "t2":
                # Corroboration only: where nothing else supports a fault, a T² / SPE excursion
                # is an operating point the model has not seen, not a fault.
                support = asset >= ratio_to_score(c.t2_support_ratio)
                gated = np.where(support, ratio_to_score(mv.ratio), 0.0)
            stronger = np.nan_to_num(gated, nan=0.0) > best
            mode = np.where(stronger, s_mode, mode)
            best = np.where(stronger, gated, best)
            asset = np.fmax(asset, np.nan_to_num(gated, nan=0.0))
        kinds = np.stack([health.stuck, health.out_of_range, health.spike, health.no_data,
                          offset | drifted])         # in DEVICE_PROBLEMS order
        dev_any = np.asarray(kinds.any(axis=0), dtype=np.bool_)
        # A device problem is a warning, never critical: the sensor or the link needs a look,
        # the machine may be fine (critical is for a failure mode close to its consequence).
        dev_ch = np.where(dev_any, c.device_problem_score, 0.0)
        dev_kind = np.argmax(kinds, axis=0)
        device, dev_mode = strongest(dev_ch, dev_kind)
        device = np.maximum(device, 0.0)
        # The whole device silent for longer than a few of its own reporting intervals.
        has_data = np.zeros((n_a, x.shape[1]), bool)
        if self._starts.size and x.shape[1]:
            has_data[self._group] = np.logical_or.reduceat(~np.isnan(raw_x[self._order]),
                                                           self._starts, axis=0)
        offline = self.silence.update(t, has_data)
        device = np.where(offline, c.device_problem_score, device)
        dev_mode = np.where(offline, DEVICE_PROBLEMS.index("device offline"), dev_mode)
        # A stopped machine says nothing new about its condition: an open alert stays open
        # (no new alert for the same fault after every stop), a closed one stays closed.
        held = np.where(on, self.running.persist(t, asset, self.equipment.open_level), np.nan)
        # Nor does one that is settling after a restart: until the adaptive detectors are back
        # (restart_hold_s, then their warm-up: NaN scores), an alert open before the stop is
        # not cleared by their silence, or a fault that persists would re-open after each stop.
        settling = (on & ~steady) & self.equipment.on[:, None]
        held = np.where(settling, np.fmax(held, self.equipment.clear_level), held)
        if regime is not None:
            # Learned after scoring (causal), from samples no alert is made of.
            self.regime.learn(regime.values, regime.used,
                              asset < self.equipment.clear_level)
            if self._anchored and t.size:
                self.anchor.snapshot(self.regime, int(t[-1]),
                                     (held >= self.equipment.open_level).any(axis=1)
                                     | self.equipment.on)
        eq_events = self.equipment.update(t, held, mode)
        dv_events = self.device.update(t, device, dev_mode)
        return BankResult(limit=lim, baseline=base_ratio, baseline_mean=mean, cusum=drift,
                          health=health, channel_score=chan, asset_score=asset, asset_mode=mode,
                          device_score=device, device_mode=dev_mode,
                          equipment_events=eq_events, device_events=dv_events,
                          t2=mv.t2, spe=mv.spe, mv_row=mv.row, extra_score=extra_score,
                          device_channel=dev_any)

    # ------------------------------------------------- multivariate and extra evidence
    def mode_index(self, name: str) -> int:
        """Index of failure mode `name` in :attr:`modes` (added if new), for `extra` modes."""
        if name not in self.modes:
            self.modes.append(name)
        return self.modes.index(name)

    def _multivariate(self, t: NDArray[np.int64], x: NDArray[np.float64]) -> _Multivariate:
        """T² / SPE of every asset's group (:class:`~anomaly.multivariate.AssetT2`), with the
        bank row and failure mode of the channel that contributes most."""
        rows = self.mv_rows
        vals = np.full((rows.shape[0], GROUP_WIDTH, x.shape[1]), np.nan)
        if rows.size:
            vals = np.where((rows >= 0)[:, :, None], x[np.maximum(rows, 0)], np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                # A non-positive reading has no logarithm: no usable sample (NaN).
                vals = np.where(self.mv_log[:, :, None],
                                np.log(np.where(vals > 0, vals, np.nan)), vals)
        named = np.where(rows >= 0, self.scored[np.maximum(rows, 0)], False) \
            if self.channels else rows >= 0
        r = self.t2.update(t, vals, rows >= 0, named)
        row = np.where(r.top >= 0, np.take_along_axis(rows, np.maximum(r.top, 0), axis=1), -1)
        mode = np.where(row >= 0, self.mode_of[np.maximum(row, 0)] if self.channels else 0, 0)
        return _Multivariate(t2=r.t2, spe=r.spe, ratio=r.ratio, row=row, mode=mode)

    def _regime(self, x: NDArray[np.float64], counter: NDArray[np.bool_],
                gone: NDArray[np.bool_]) -> _Regime:
        """Score the generic channels `x` (channels, T; NaN = not evidence) against their
        asset's operating regime (:class:`~anomaly.multivariate.OperatingRegime`). A channel
        whose sensor gave nothing usable (`gone`: no reading or a suspect one) in more than a
        tenth of the block is left out of its asset's regression for the block."""
        rows = self.regime_rows[:, :self.regime_width]
        counts = counter[np.maximum(rows, 0)].any(axis=2) if x.shape[1] else \
            np.zeros(rows.shape, bool)
        used = (rows >= 0) & ~counts
        vals = np.where(used[:, :, None], x[np.maximum(rows, 0)], np.nan) if rows.size \
            else np.zeros((*rows.shape, x.shape[1]))
        absent = used & (gone[np.maximum(rows, 0)].mean(axis=2) > 0.1) if x.shape[1] else \
            np.zeros(rows.shape, bool)
        cz = self.regime.score(vals, used, absent)
        explain = self._regime_partial(vals, used, absent, cz)
        z = np.full(x.shape, np.nan)
        ez = np.full(x.shape, np.nan)
        ai, si = np.nonzero(used)
        z[rows[ai, si]] = cz[ai, si]
        ez[rows[ai, si]] = explain[ai, si]
        with np.errstate(invalid="ignore"):
            explained = np.abs(ez) <= self.config.regime_support
        return _Regime(values=vals, used=used, z=z, explained=explained, absent=absent)

    def _regime_partial(self, vals: NDArray[np.float64], used: NDArray[np.bool_],
                        absent: NDArray[np.bool_], cz: NDArray[np.float64]
                        ) -> NDArray[np.float64]:
        """`cz` where the full fit scored, else the fit of the channels that do have values at
        that sample. Where an asset has values but some channel has none (its temperatures
        still settling after a restart, released one by one), the channels that have them are
        related among themselves too: enough to say the machine's program explains a channel,
        not to accuse one (a settling channel drives others: a chiller's return water follows
        its supply).

        The set of channels with values changes within a block (a channel released at
        06:42:00 of a block that began at 06:40): each asset's samples are grouped by that
        set, its *presence pattern*, and scored with the pattern's channels, the asset's
        commonest unscored pattern first, up to ``_PARTIAL_ROUNDS`` patterns per block; a
        sample whose pattern was not among them keeps the fit of a pattern its channels
        contain, or none."""
        present = used & ~absent
        fin = np.isfinite(vals) & present[:, :, None]
        # Assets whose regime is still learning have no fit of any pattern.
        unscored = fin & np.isnan(cz) & (self.regime.weight >= self.regime.learn_n)[:, None, None]
        if not unscored.any():
            return cz
        k = vals.shape[1]
        bits = (fin.astype(np.int64) << np.arange(k, dtype=np.int64)[None, :, None]).sum(axis=1)
        todo = unscored.any(axis=1) & (fin.sum(axis=1) >= 3)     # (assets, T)
        explain = cz.copy()
        for _ in range(_PARTIAL_ROUNDS):
            ai, ti = np.nonzero(todo)
            if ai.size == 0:
                break
            pats, counts = np.unique(np.stack([ai, bits[ai, ti]]), axis=1, return_counts=True)
            # Per asset its commonest pattern (pats are sorted by asset; ties: the larger set).
            order = np.lexsort((-pats[1], -counts, pats[0]))
            first = order[np.r_[True, pats[0, order][1:] != pats[0, order][:-1]]]
            pattern = np.zeros(vals.shape[0], np.int64)
            pattern[pats[0, first]] = pats[1, first]
            slots = (pattern[:, None] >> np.arange(k, dtype=np.int64)[None, :]) & 1 == 1
            partial = self.regime.score(vals, used, absent | ~slots)
            explain = np.where(np.isnan(explain), partial, explain)
            todo &= bits != pattern[:, None]
        return explain

    def _anchor_score(self, t: NDArray[np.int64], regime: _Regime,
                      ignored: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Per channel and sample: the slow-fault evidence of the generic channels against
        their asset's regime as it stood `anchor_lag_s` ago (see there); NaN elsewhere."""
        c = self.config
        rows = self.regime_rows[:, :self.regime_width]
        az = self.anchor.score(regime.values, regime.used, regime.absent, int(t[-1]),
                               marginal=True)
        z = np.full(ignored.shape, np.nan)
        ai, si = np.nonzero(regime.used)
        z[rows[ai, si]] = az[ai, si]
        g = self.generic_rows
        zs = np.full(ignored.shape, np.nan)
        zs[g] = self.anchor_smoother.update(t, z[g], g)
        # Calm where the smoothed z is within bounds, or its asset has no reference yet; a
        # channel without a value (the machine paused between jobs) keeps its state.
        no_ref = ~self.anchor.referenced[self.asset_of][:, None]
        with np.errstate(invalid="ignore"):
            calm = self.anchor_calm.update(t, (np.abs(zs) <= c.anchor_level)
                                           | (np.isnan(zs) & no_ref))
        young = t[None, :] - calm < int(round(c.anchor_hold_s * 1e6))
        score = np.where(young, 0.0, ratio_to_score(np.abs(zs) / c.anchor_level))
        return np.where(ignored, np.nan, score)

    def _settled(self, t: NDArray[np.int64], x: NDArray[np.float64],
                 steady: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Per channel and sample (channels, T): settled since the asset's last restart.

        Set where the value, smoothed over ``settle_smooth_s`` (one noisy sample is no sign),
        is back within ``envelope_settled_z`` long-run standard deviations of its envelope's
        mean, as the envelope stands before this block (it learns from settled samples only,
        so it is the machine before the stop; one still warming up has nothing to compare
        with); or where that distance has stopped falling (it is not below its own running
        mean over ``settle_trend_s`` by more than ``settle_margin``: a transient converges,
        a fault stays away); or once the asset has run steadily for ``settle_max_s``.
        Cleared while the asset is stopped or in its restart hold (not `steady`). Channels
        with a model are never set (they have a restart hold of their own)."""
        c = self.config
        calm = t[None, :] - self.last_unsteady.update(t, ~steady) \
            >= int(round(c.settle_max_s * 1e6))
        unsteady = ~steady[self.asset_of]
        # Only channels not settled yet, or whose machine stops in this block, need a look
        # (nearly none, most of the time): a settled channel of a machine running steadily
        # stays settled. A channel looked at afresh starts its smoothers afresh.
        g = self.generic_rows[~self.settled.latched[self.generic_rows]
                              | unsteady[self.generic_rows].any(axis=1)]
        inside = np.zeros(x.shape, bool)
        if g.size:
            fresh = g[self.settled.latched[g]]
            self.settle_smoother.reset(fresh)
            self.settle_trend.reset(fresh)
            (mean, std), known = self.envelope.learned()
            dist = np.abs(self.settle_smoother.update(t, x[g], g) - mean[g, None]) \
                / std[g, None]
            trend = self.settle_trend.update(t, dist, g)
            with np.errstate(invalid="ignore"):                               # NaN: False
                inside[g] = ~known[g, None] | (dist < c.envelope_settled_z) \
                    | (trend - dist <= c.settle_margin)
        return self.settled.update(inside | calm[self.asset_of], unsteady)

    def _sensor_drift(self, t: NDArray[np.int64], ratio: NDArray[np.float64],
                      base_ratio: NDArray[np.float64], step: NDArray[np.float64],
                      chan: NDArray[np.float64],
                      spectral: tuple[NDArray[np.float64], NDArray[np.int64]] | None,
                      rest_ok: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Channels (rows, T) whose deviation a witness contradicts: (contradicted now,
        latched drift). A contradicted channel is no equipment evidence; once contradicted
        for ``drift_hold_s`` it is latched as a drifted sensor (a device problem). Only a
        channel that alone moved, on an asset without an open equipment alert, is set: no
        other channel of the asset above half its threshold (other causes of a vibration rise,
        such as cavitation or unbalance, move other channels too).

        Two witnesses:

        * **Vibration bursts** (`spectral`, the worker's bearing check): a vibration channel
          over its threshold while the latest burst's bearing-defect bands are at their healthy
          level (``burst_healthy_ratio``). Bearing wear puts defect energy into the bursts well
          before the vibration RMS rises; a gain or offset drift of the RMS sensor leaves the
          bursts (their own accelerometer, scored against the asset's first healthy bursts)
          unchanged. Cleared when the bursts show defect energy (score at their threshold: the
          bearing check carries the alert from then on) or a stop shows the sensor at rest
          (`rest_ok`: at most its ``idle_max``, as :class:`RestOffset` clears; a reading that
          merely dips with the operating point does not clear it). A NaN spectral score (no
          bursts, learning, latest burst older than the hold) sets nothing.
        * **Witness metrics** (``ChannelSpec.witnesses``): a channel that changed suddenly
          (`base_ratio`, its short-baseline ratio on its evidence side, at 1) while every
          witness held steady (`step`, the short-baseline |z| over ``z_limit``, below
          ``witness_steady_ratio`` in either direction; a witness without a reading vouches
          for nothing, so nothing is contradicted). Cleared when all of the channel's evidence
          (`ratio`: limits, short baseline, drift) is back below that ratio, or a witness
          itself changes suddenly (at a ratio of 1: the machine has changed after all). A
          sensor put right after drifting steps back to the true value this way, and its
          baseline, which had followed the drift, sees the step.
        """
        shape = ratio.shape
        candidate = np.zeros(shape, bool)
        clear = rest_ok.copy()
        explained = np.zeros(shape, bool)    # channels a witness explains: no support either
        if not shape[1]:
            return candidate, candidate
        if spectral is not None and self.vibration.any():
            calm = spectral[0] < ratio_to_score(self.config.burst_healthy_ratio)   # NaN: False
            worn = spectral[0] >= 0.5                                               # NaN: False
            vib = self.vibration[:, None]
            explained |= vib & calm[self.asset_of]
            with np.errstate(invalid="ignore"):
                candidate |= explained & (ratio >= 1.0)                            # NaN: False
            clear |= vib & worn[self.asset_of]
        if self.witnessed.any():
            rows = np.flatnonzero(self.witnessed)
            w = self.witness_rows[rows]
            steady_ratio = self.config.witness_steady_ratio
            ws = step[np.maximum(w, 0)]                   # (rows, witnesses, T)
            with np.errstate(invalid="ignore"):                                   # NaN: False
                held = np.all((w < 0)[:, :, None] | (ws < steady_ratio), axis=1)
                candidate[rows] |= held & (base_ratio[rows] >= 1.0)
                moved = np.any((w >= 0)[:, :, None] & (ws >= 1.0), axis=1)
                clear[rows] |= (ratio[rows] < steady_ratio) | moved
            explained[rows] |= candidate[rows]
        if not candidate.any():
            return candidate, self.burst_drift.update(candidate, clear, t)
        # An asset with an equipment alert open has an explanation for the change (an
        # unrepaired cavitating pump vibrates with healthy bearing bands): nothing is set.
        others = reduce_max(np.where(explained, 0.0, chan), self._order, self._starts,
                            len(self.assets), self._group)
        alone = (others < ratio_to_score(0.5)) & ~self.equipment.on[:, None]
        contradicted = candidate & alone[self.asset_of]
        return contradicted, self.burst_drift.update(contradicted, clear, t)

    def _check_extra(self, extra: Mapping[str, tuple[ArrayLike, ArrayLike]] | None,
                     n_t: int) -> dict[str, tuple[NDArray[np.float64], NDArray[np.int64]]]:
        out: dict[str, tuple[NDArray[np.float64], NDArray[np.int64]]] = {}
        shape = (len(self.assets), n_t)
        for name, (score, mode) in (extra or {}).items():
            s = np.asarray(score, dtype=np.float64)
            m = np.asarray(mode)
            if s.shape != shape or m.shape != shape:
                raise ValueError(f"`extra[{name!r}]` must hold two arrays shaped {shape}, got "
                                 f"{s.shape} and {m.shape}")
            if not np.issubdtype(m.dtype, np.integer) or bool(
                    np.any((m < 0) | (m >= len(self.modes)))):
                raise ValueError(f"`extra[{name!r}]` modes must be indices into `modes`")
            if bool(np.any((s < 0) | (s > 1))):
                raise ValueError(f"`extra[{name!r}]` scores must lie in [0, 1] (NaN: none)")
            out[name] = (s, m.astype(np.int64))
        return out

    def _relearn_after_long_stop(self, t: NDArray[np.int64], on: NDArray[np.bool_],
                                 last: NDArray[np.int64]) -> None:
        """Reset the adaptive baselines of every asset that has been stopped for at least
        ``relearn_stop_s`` in this block (a trip and repair, a night off): after the restart
        (and its ``restart_hold_s``) they warm up again from the restarted machine. The noise
        spread learned over hours is kept (it is the sensor's and the process's, and keeping it
        means the fresh mean cannot alert against a spread learned from a few minutes).

        The CUSUM reference is kept (its sums restart anyway): a drift that develops over days
        must not be forgotten every night, and re-learning it whenever a machine stops with an
        alert open made a fault that persists through the stop the new normal (the demo's
        unrepaired compressor leak then re-opened ~45 times in 5 days on its limit alone). A
        reference learned on an already faulty machine is harmless after the repair as long as
        only the fault's direction is evidence (``side``)."""
        if not on.shape[1] or not self.channels:
            return
        if not np.isfinite(self.config.relearn_stop_s):
            return
        stop_us = int(round(self.config.relearn_stop_s * 1e6))
        long_stop = np.any(~on & (t[None, :] - last >= stop_us), axis=1)
        if not long_stop.any():
            return
        rows = long_stop[self.asset_of]
        keep = ("min_std", "sum_wq", "sum_wv")
        self.baseline.reset(rows, keep=keep)
        self.daily.reset(rows, keep=keep)
        self.smoother.reset(rows)

    def device_problem(self, index: int) -> str:
        return DEVICE_PROBLEMS[index]

    def _inferred_running(self, x: NDArray[np.float64], n_a: int
                          ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_]]:
        """Per asset (assets, T): (at rest, running, awake), from its generic channels against
        their learned running level (the adaptive baseline's mean before this block, learned
        from steady running samples only); neither at rest nor running where it is not clear;
        awake where no channel is near zero."""
        g = self.generic_rows
        (mean, _), _ = self.baseline.learned()
        level = np.abs(mean[g])
        learned = np.isfinite(level) & (level > 0)
        # After a long stop the baselines learn afresh (`_relearn_after_long_stop`), but the
        # machine's running level is still the one they last knew (`run_level`, kept through
        # the stop): without it the restarted machine could never be told running again, and
        # its channels were blind from its first long stop on. Not the CUSUM's reference: that
        # is the channel's first readings, and a machine first seen at rest (a plant whose
        # devices came online at night) then counted as running through every later night.
        kept = self.run_level.level[g]
        self.run_level.level[g] = np.where(learned, level, kept)
        with np.errstate(invalid="ignore", divide="ignore"):
            # Before the baseline ever knew a level: the CUSUM's reference, if any.
            ref = np.abs(self.cusum.ref_sum[g] / np.minimum(self.cusum.count[g],
                                                            self.cusum.warmup))
        level = np.where(learned, level, np.where(np.isfinite(kept) & (kept > 0), kept, ref))
        known = (np.isfinite(level) & (level > 0))[:, None]
        ax = np.abs(x[g])
        near = np.zeros(x.shape, bool)
        high = np.zeros(x.shape, bool)
        near[g] = known & (ax <= 0.02 * level[:, None])
        high[g] = known & (ax >= 0.2 * level[:, None])
        n_near = self._count(near, n_a)
        stopped = n_near >= 2
        return stopped, ~stopped & (self._count(high, n_a) >= 2), n_near == 0

    def _count(self, flag: NDArray[np.bool_], n_a: int) -> NDArray[np.int64]:
        """Per asset and sample (assets, T): how many of its channels `flag` (channels, T)."""
        out = np.zeros((n_a, flag.shape[1]), np.int64)
        if self._starts.size and flag.shape[1]:
            out[self._group] = np.add.reduceat(flag[self._order].astype(np.int64),
                                               self._starts, axis=0)
        return out

    def _machine_jumps(self, spike: NDArray[np.bool_], stopped: NDArray[np.bool_],
                       n_a: int) -> NDArray[np.bool_]:
        """Per channel and sample: a spike of a channel no model describes that is the
        machine, not the sensor: two or more of the asset's channels jump at once (a program
        holding a speed for a second), or the machine stops within the next two samples (the
        last second before a stop). A sensor's spike is its own."""
        gs = spike & self.generic[:, None]
        soon = np.zeros(stopped.shape, bool)
        if stopped.shape[1] > 1:
            soon[:, :-1] = stopped[:, 1:]
            soon[:, :-2] |= stopped[:, 2:]
        machine = (self._count(gs, n_a) >= 2) | soon
        return np.asarray(gs & machine[self.asset_of], dtype=np.bool_)

    # --------------------------------------------------------------- checkpoint
    def _parts(self) -> dict[str, StreamingDetector]:
        return {"limit": self.limit, "baseline": self.baseline, "daily": self.daily,
                "cusum": self.cusum, "health": self.health, "equipment": self.equipment,
                "device": self.device, "running": self.running, "suspect": self.suspect,
                "last_on": self.last_on, "smoother": self.smoother, "offset": self.offset,
                "last_awake": self.last_awake, "rest": self.rest, "run_level": self.run_level,
                "first_seen": self.first_seen,
                "last_moving": self.last_moving, "t2": self.t2, "burst_drift": self.burst_drift,
                "likelihood": self.likelihood, "likelihood_seasonal": self.likelihood_seasonal,
                "silence": self.silence, "likelihood_change": self.likelihood_change,
                "counters": self.counters,
                "recurrence": self.recurrence,
                **({"seasonal": self.seasonal} if self.config.seasonal else {}),
                **({"weekly": self.weekly, "weekday": self.weekday}
                   if self.config.seasonal and self.config.seasonal_weekly_s > 0 else {}),
                **({"change": self.change} if self.config.change_halflife > 0 else {}),
                **({"envelope": self.envelope, "likelihood_envelope": self.likelihood_envelope,
                    "settled": self.settled, "last_unsteady": self.last_unsteady,
                    "settle_smoother": self.settle_smoother, "settle_trend": self.settle_trend}
                   if self.config.envelope_halflife > 0 else {}),
                **({"spread": self.spread, "likelihood_spread": self.likelihood_spread}
                   if self.config.spread_halflife > 0 else {}),
                **({"regime": self.regime} if self.config.regime_support > 0 else {}),
                **({"likelihood_regime": self.likelihood_regime,
                    "regime_smoother": self.regime_smoother, "regime_calm": self.regime_calm}
                   if self.config.regime_support > 0 and self.config.regime_evidence else {}),
                **({"anchor": self.anchor, "anchor_smoother": self.anchor_smoother,
                    "anchor_calm": self.anchor_calm} if self._anchored else {})}

    def to_bytes(self) -> bytes:
        """Every detector's state as one ``.npz`` (no pickle); channel keys included."""
        arrays: dict[str, NDArray[Any]] = {
            "keys": np.array([f"{a}\x1f{m}" for a, m in self.keys()], dtype=np.str_),
            "assets": np.array(self.assets, dtype=np.str_),
            # Failure-mode order, so mode indices in the alert trackers keep their meaning
            # (modes added through `mode_index` are not in the specs).
            "modes": np.array(self.modes, dtype=np.str_),
        }
        for name, part in self._parts().items():
            for key, arr in part.state_dict().items():
                arrays[f"{name}.{key}"] = arr
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(
        cls, data: bytes, specs: Sequence[ChannelSpec], config: BankConfig | None = None
    ) -> DetectorBank:
        """Restore a checkpoint written by :meth:`to_bytes`; `specs` give the channels' config
        (matched by key) and may add channels the checkpoint did not know."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        keys = [tuple(str(k).split("\x1f", 1)) for k in arrays["keys"]]
        by_key = {(s.asset, s.metric): s for s in specs}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ValueError(f"checkpoint has channels without a spec: {missing[:3]}")
        bank = cls([by_key[(k[0], k[1])] for k in keys], config)
        if [str(a) for a in arrays["assets"]] != bank.assets:
            raise ValueError("checkpoint assets do not match its channels")
        if "modes" in arrays:
            saved = [str(m) for m in arrays["modes"]]
            bank.modes = saved + [m for m in bank.modes if m not in saved]
            bank._index()
        for name, part in bank._parts().items():
            prefix = f"{name}."
            state = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if state:                         # a part newer than the checkpoint starts fresh
                part.load_state(state)
        known = set(keys)
        bank.add([s for s in specs if (s.asset, s.metric) not in known])
        return bank


@dataclass(frozen=True)
class _Regime:
    """One block's operating-regime check: the model's inputs (assets, width, T), its
    used slots, and per channel and sample the conditional z (NaN: not modelled) and whether
    the asset's other channels explain it."""

    values: NDArray[np.float64]
    used: NDArray[np.bool_]
    z: NDArray[np.float64]
    explained: NDArray[np.bool_]
    absent: NDArray[np.bool_]


@dataclass(frozen=True)
class _Multivariate:
    """Per asset and sample: T² and SPE ratios, the gated ratio, the top channel's bank row
    (-1: none) and its failure mode index."""

    t2: NDArray[np.float64]
    spe: NDArray[np.float64]
    ratio: NDArray[np.float64]
    row: NDArray[np.int64]
    mode: NDArray[np.int64]


def _log_ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((num > 0) & (den > 0), np.log(num / den), np.nan)


#: Characteristics a channel can be watched through (``ChannelSpec.transform``): each takes
#: the channel's values and its partners' (rows, T) and returns the characteristic.
TRANSFORMS: dict[str, Any] = {
    # Pump head coefficient, log((p_discharge - p_suction) / n^2): constant on the affinity-law
    # curve whatever the demand; a leak (or wear) lowers it. Partners: suction, speed (rpm).
    "head_coefficient": lambda p_d, p_s, rpm: _log_ratio(p_d - p_s, (rpm / 1000.0) ** 2),
    # Motor current per unit of compressor load, log(I / (0.3 + 0.7 load)): the motor's part-
    # load characteristic; a heat-rejection fault raises the lift, so the current per load.
    "current_per_load": lambda i, load: _log_ratio(i, 0.3 + 0.007 * load),
    # Temperature rise over ambient. Partner: the ambient temperature.
    "rise_over_ambient": lambda temp, ambient: temp - ambient,
}


def _mode(spec: ChannelSpec) -> str:
    return spec.mode or failure_mode_for(spec.metric)


_LONG_AGO = np.iinfo(np.int64).min // 2
# Presence patterns scored per block by DetectorBank._regime_partial (each one regime scoring
# of the fleet, run only in blocks where some asset has channels without values).
_PARTIAL_ROUNDS = 3


class RunState(StreamingDetector):
    """Per asset: is it running steadily (running, and not just restarted)? And the
    persistence filter that keeps a momentary equipment score from opening an alert.

    An asset never seen stopped counts as running since long ago, so a worker that starts on a
    running fleet scores at once; after an observed stop it waits `restart_hold_s`.

    >>> rs = RunState(1, restart_hold_s=2, limit_hold_s=1, open_hold_s=0)
    >>> t = np.arange(7, dtype=np.int64) * 1_000_000
    >>> on, steady = rs.steady(t, np.array([[1.0, 0, 0, 1, 1, 1, np.nan]]))
    >>> on.astype(int).tolist(), steady.astype(int).tolist()
    ([[1, 0, 0, 0, 1, 1, 1]], [[1, 0, 0, 0, 0, 1, 1]])
    """

    _state_names: ClassVar[tuple[str, ...]] = ("on", "since", "above", "above_since")
    on: NDArray[Any]
    since: NDArray[Any]
    above: NDArray[Any]
    above_since: NDArray[Any]

    def __init__(self, assets: int = 0, *, restart_hold_s: float = 1200.0,
                 limit_hold_s: float = 60.0, open_hold_s: float = 5.0) -> None:
        self.hold_us = int(round(restart_hold_s * 1e6))
        self.limit_hold_us = int(round(limit_hold_s * 1e6))
        self.open_hold_us = int(round(open_hold_s * 1e6))
        self._set_state(self._initial_state(assets))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"on": np.ones(n, bool), "since": np.full(n, _LONG_AGO, np.int64),
                "above": np.zeros(n, bool), "above_since": np.zeros(n, np.int64)}

    def steady(self, t: NDArray[np.int64], running: NDArray[np.float64]
               ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """`running` (assets, T): 1 running, 0 stopped, NaN unknown (keeps the last state).
        Returns (running for ``limit_hold_s``, running for ``restart_hold_s``)."""
        if running.shape[1] == 0:
            return np.zeros(running.shape, bool), np.zeros(running.shape, bool)
        known = ~np.isnan(running)
        on = hysteresis(known & (running > 0.5), known & (running <= 0.5), self.on)
        start = run_start(on, t, self.on, self.since)
        age = t[None, :] - start
        self.on, self.since = on[:, -1].copy(), start[:, -1].copy()
        return on & (age >= self.limit_hold_us), on & (age >= self.hold_us)

    def persist(self, t: NDArray[np.int64], score: NDArray[np.float64],
                level: float) -> NDArray[np.float64]:
        """`score` held just below `level` until it has stayed at or above it for
        ``open_hold_s``."""
        if score.shape[1] == 0:
            return score
        above = score >= level
        start = run_start(above, t, self.above, self.above_since)
        young = above & (t[None, :] - start < self.open_hold_us)
        self.above, self.above_since = above[:, -1].copy(), start[:, -1].copy()
        return np.where(young, np.nextafter(level, 0.0), score)


class Suspect(StreamingDetector):
    """Per channel: a sensor problem now or within the last `hold_s`.

    >>> sp = Suspect(1, hold_s=2)
    >>> t = np.arange(6, dtype=np.int64) * 1_000_000
    >>> sp.update(t, np.array([[0, 1, 0, 0, 0, 0]], bool)).astype(int).tolist()
    [[0, 1, 1, 1, 0, 0]]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("last_bad",)
    last_bad: NDArray[Any]

    def __init__(self, channels: int = 0, *, hold_s: float = 900.0) -> None:
        self.hold_us = int(round(hold_s * 1e6))
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"last_bad": np.full(n, _LONG_AGO, np.int64)}

    def update(self, t: NDArray[np.int64], problem: NDArray[np.bool_]) -> NDArray[np.bool_]:
        if problem.shape[1] == 0:
            return np.zeros(problem.shape, bool)
        last = np.maximum.accumulate(np.where(problem, t[None, :], _LONG_AGO), axis=1)
        last = np.maximum(last, self.last_bad[:, None])
        self.last_bad = last[:, -1].copy()
        return np.asarray(t[None, :] - last <= self.hold_us, dtype=np.bool_)


class RunLevel(StreamingDetector):
    """Per channel: the running level its baseline last knew (NaN: never), kept when the
    baseline learns afresh after a long stop, so a machine nobody described can still be
    told at rest or running.

    >>> rl = RunLevel(2)
    >>> rl.level[:] = [2500.0, np.nan]
    >>> rl.reset([True, False]); rl.level.tolist()
    [nan, nan]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("level",)
    level: NDArray[Any]

    def __init__(self, channels: int = 0) -> None:
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"level": np.full(n, np.nan)}


class Latch(StreamingDetector):
    """Per channel: a switch set by one condition and cleared by another, across blocks. With
    ``hold_s`` the set condition must have held that long without a break (so a lone sample
    never sets it); `times` are then required.

    >>> la = Latch(1)
    >>> on = la.update(np.array([[0, 1, 0, 0, 0]], bool), np.array([[0, 0, 0, 1, 0]], bool))
    >>> on.astype(int).tolist(), bool(la.latched[0])
    ([[0, 1, 1, 0, 0]], False)
    >>> slow = Latch(1, hold_s=2)
    >>> t = np.arange(6, dtype=np.int64) * 1_000_000
    >>> slow.update(np.array([[1, 0, 1, 1, 1, 0]], bool), np.zeros((1, 6), bool),
    ...             t).astype(int).tolist()
    [[0, 0, 0, 0, 1, 1]]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("latched", "pending", "pending_since")
    latched: NDArray[Any]
    pending: NDArray[Any]
    pending_since: NDArray[Any]

    def __init__(self, channels: int = 0, *, hold_s: float = 0.0) -> None:
        self.hold_us = int(round(hold_s * 1e6))
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"latched": np.zeros(n, bool), "pending": np.zeros(n, bool),
                "pending_since": np.zeros(n, np.int64)}

    def update(self, set_: NDArray[np.bool_], clear: NDArray[np.bool_],
               times: NDArray[np.int64] | None = None) -> NDArray[np.bool_]:
        if set_.shape[1] == 0:
            return np.zeros(set_.shape, bool)
        if self.hold_us > 0:
            if times is None:
                raise ValueError("a Latch with `hold_s` needs `times`")
            since = run_start(set_, times, self.pending, self.pending_since)
            self.pending, self.pending_since = set_[:, -1].copy(), since[:, -1].copy()
            set_ = set_ & (times[None, :] - since >= self.hold_us)
        out = hysteresis(set_, clear & ~set_, self.latched)
        self.latched = out[:, -1].copy()
        return np.asarray(out, dtype=np.bool_)


class Smoother(StreamingDetector):
    """Per channel: EWMA of the valid samples with a per-channel half-life (samples), NaN until
    it has seen two half-lives' worth of data (weight sum >= 0.75) and where the input is NaN.
    Gaps carry no weight but age what was learned, so after a long gap it warms up again.

    A screw compressor's discharge pressure is a load/unload sawtooth whose mean over a cycle
    is the set band's middle whatever the air demand; averaging the cycle out leaves the level
    a leak pulls down.

    >>> sm = Smoother(1, halflife=np.array([2.0]))
    >>> t = np.arange(6, dtype=np.int64)
    >>> np.round(sm.update(t, np.array([[1.0, 3, 1, 3, 1, 3]]), np.array([0])), 2).tolist()
    [[nan, nan, nan, 2.17, 1.75, 2.17]]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("alpha", "sum_w", "sum_wx")
    _param_names: ClassVar[tuple[str, ...]] = ("alpha",)
    alpha: NDArray[Any]
    sum_w: NDArray[Any]
    sum_wx: NDArray[Any]

    def __init__(self, channels: int = 0, *, halflife: ArrayLike = 1.0) -> None:
        self._set_state(self._initial_state(channels))
        self.alpha = _alpha(halflife, channels)

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"alpha": np.full(n, 0.5), "sum_w": np.zeros(n), "sum_wx": np.zeros(n)}

    def update(self, t: NDArray[np.int64], x: NDArray[np.float64],
               rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Smooth `x` (len(rows), T), the values of channels `rows`; state carried."""
        out = np.full(x.shape, np.nan)
        if x.shape[1] == 0 or rows.size == 0:
            return out
        valid = ~np.isnan(x)
        w = valid.astype(np.float64)
        xw = np.where(valid, x, 0.0)
        # One lfilter pass per distinct half-life (a handful), never a loop over channels.
        for a in np.unique(self.alpha[rows]):
            k = np.flatnonzero(self.alpha[rows] == a)
            r = rows[k]
            sw = ewma_with_prior(w[k], float(a), self.sum_w[r])
            swx = ewma_with_prior(w[k] * xw[k], float(a), self.sum_wx[r])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k] = np.where(valid[k] & (sw >= 0.75), swx / sw, np.nan)
            self.sum_w[r], self.sum_wx[r] = sw[:, -1], swx[:, -1]
        return out


def _alpha(halflife: ArrayLike, n: int) -> NDArray[np.float64]:
    h = np.broadcast_to(np.asarray(halflife, dtype=np.float64), (n,))
    if np.any(~(h > 0)):
        raise ValueError("`halflife` must be > 0")
    return np.asarray(1.0 - 0.5 ** (1.0 / h), dtype=np.float64)


class RestOffset(StreamingDetector):
    """Per channel: latched "reads at rest what only a running machine could" (an offset, i.e.
    a drifted sensor). Set when the channel reads above its ``idle_max`` for ``hold_s`` while
    its machine is at rest, cleared when a later rest shows it at most ``idle_max`` for
    ``hold_s``; channels with a NaN ``idle_max`` are never flagged.

    >>> ro = RestOffset(1, hold_s=2)
    >>> ro.idle_max[:] = 0.5
    >>> t = np.arange(8, dtype=np.int64) * 1_000_000
    >>> rest = np.array([[0, 1, 1, 1, 0, 1, 1, 1]], bool)
    >>> x = np.array([[3.0, 2.0, 2.0, 2.0, 3.0, 0.1, 0.1, 0.1]])
    >>> ro.update(t, x, rest).astype(int).tolist()
    [[0, 0, 0, 1, 1, 1, 1, 0]]
    """

    _state_names: ClassVar[tuple[str, ...]] = ("idle_max", "latched", "high", "high_since",
                                               "low", "low_since")
    _param_names: ClassVar[tuple[str, ...]] = ("idle_max",)
    idle_max: NDArray[Any]
    latched: NDArray[Any]
    high: NDArray[Any]
    high_since: NDArray[Any]
    low: NDArray[Any]
    low_since: NDArray[Any]

    def __init__(self, channels: int = 0, *, hold_s: float = 30.0) -> None:
        self.hold_us = int(round(hold_s * 1e6))
        self._set_state(self._initial_state(channels))

    def _initial_state(self, n: int) -> dict[str, NDArray[Any]]:
        return {"idle_max": np.full(n, np.nan), "latched": np.zeros(n, bool),
                "high": np.zeros(n, bool), "high_since": np.zeros(n, np.int64),
                "low": np.zeros(n, bool), "low_since": np.zeros(n, np.int64)}

    def update(self, t: NDArray[np.int64], x: NDArray[np.float64],
               at_rest: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """`x` (channels, T) readings, `at_rest` (channels, T): is the channel's machine at
        rest. Returns the latched offset flag per sample."""
        if x.shape[1] == 0:
            return np.zeros(x.shape, bool)
        watch = at_rest & ~np.isnan(x) & ~np.isnan(self.idle_max)[:, None]
        with np.errstate(invalid="ignore"):
            above = x > self.idle_max[:, None]
        high, low = watch & above, watch & ~above
        hs = run_start(high, t, self.high, self.high_since)
        ls = run_start(low, t, self.low, self.low_since)
        set_ = high & (t[None, :] - hs >= self.hold_us)
        clear = low & (t[None, :] - ls >= self.hold_us)
        out = hysteresis(set_, clear, self.latched)
        self.latched, self.high, self.low = out[:, -1].copy(), high[:, -1].copy(), low[:, -1].copy()
        self.high_since, self.low_since = hs[:, -1].copy(), ls[:, -1].copy()
        return np.asarray(out, dtype=np.bool_)
