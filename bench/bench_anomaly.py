"""Anomaly benchmarks: streaming-bank throughput (vs a per-channel Python loop) and accuracy.

    python bench/bench_anomaly.py [--channels 2000] [--seconds 3600] [--skab DIR] [--nab DIR]

Throughput is measured on one core (BLAS/OpenMP threads pinned to 1 before numpy loads), after a
warm-up, as the median of 3 runs. The Python loop runs the same per-channel algorithm (EWMA
baseline z-score, two-sided CUSUM, limit rule with hysteresis and duration) sample by sample on a
subset of channels, in the same process, and its output is checked against the vectorised one.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from anomaly import nab, skab  # noqa: E402
from anomaly.bank import BankConfig, ChannelSpec, DetectorBank  # noqa: E402
from anomaly.baseline import EwmaBaseline  # noqa: E402
from anomaly.drift import Cusum  # noqa: E402
from anomaly.limits import LimitRule  # noqa: E402

S = 1_000_000
ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def make_fleet(channels: int, seconds: int, seed: int = 42) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 70.0 + rng.normal(0.0, 0.5, (channels, seconds))
    x[::50, seconds // 2:] += 30.0                      # some channels overheat half-way
    return x


def core_detectors(channels: int) -> tuple[EwmaBaseline, Cusum, LimitRule]:
    return (EwmaBaseline(channels, halflife=600, warmup=120, min_std=1e-6),
            Cusum(channels, k=1.0, h=40.0, warmup=600, min_std=1e-6, z_clip=2.0),
            LimitRule(channels, high=95.0, clear_high=90.0, duration_s=60.0))


def run_vectorised(x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base, cus, lim = core_detectors(x.shape[0])
    zs, cs, ls = [], [], []
    for a in range(0, x.shape[1], block):
        t = np.arange(a, min(a + block, x.shape[1]), dtype=np.int64) * S
        xb = x[:, a:a + block]
        zs.append(base.update(t, xb).z)
        cs.append(cus.update(t, xb).score)
        ls.append(lim.update(t, xb).high)
    return np.concatenate(zs, 1), np.concatenate(cs, 1), np.concatenate(ls, 1)


def run_python_loop(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same three detectors, one channel and one sample at a time."""
    n_c, n_t = x.shape
    alpha = 1.0 - 0.5 ** (1.0 / 600)
    z_out = np.full((n_c, n_t), math.nan)
    c_out = np.full((n_c, n_t), math.nan)
    l_out = np.zeros((n_c, n_t), bool)
    for c in range(n_c):
        sw = swx = swq = 0.0
        r_sum = r_sq = 0.0
        up = lo = 0.0
        on, start = False, 0
        for i in range(n_t):
            v = float(x[c, i])
            # EWMA baseline: z against the mean/variance before this sample.
            mean = swx / sw if sw > 0 else math.nan
            var = swq / sw if sw > 0 else math.nan
            std = max(math.sqrt(var), 1e-6) if sw > 0 else 1e-6
            if i >= 120:                         # the bench data have no gaps: i = samples seen
                z_out[c, i] = (v - mean) / std
            dev2 = (v - mean) ** 2 if sw > 0 else 0.0
            sw = alpha + (1 - alpha) * sw
            swx = alpha * v + (1 - alpha) * swx
            swq = alpha * dev2 + (1 - alpha) * swq
            # CUSUM against the reference of the first 600 samples (frozen).
            if i < 600:
                r_sum += v
                r_sq += v * v
            else:
                m = r_sum / 600
                sd = max(math.sqrt(max(r_sq / 600 - m * m, 0.0)), 1e-6)
                zz = min(max((v - m) / sd, -2.0), 2.0)
                up = max(0.0, up + zz - 1.0)
                lo = max(0.0, lo - zz - 1.0)
                c_out[c, i] = max(up, lo) / 40.0
            # Limit with hysteresis and duration.
            if v > 95.0:
                if not on:
                    on, start = True, i
            elif v < 90.0:
                on = False
            l_out[c, i] = on and (i - start) * S >= 60 * S
    return z_out, c_out, l_out


def median_time(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=2000)
    p.add_argument("--seconds", type=int, default=3600)
    p.add_argument("--block", type=int, default=600, help="samples per streaming block")
    p.add_argument("--loop-channels", type=int, default=20)
    p.add_argument("--skab", type=Path, default=DATASETS / "skab" / "data")
    p.add_argument("--nab", type=Path, default=DATASETS / "nab" / "data")
    args = p.parse_args()

    x = make_fleet(args.channels, args.seconds)
    n = x.size
    run_vectorised(x[:, :args.block], args.block)                       # warm-up
    t_core = median_time(lambda: run_vectorised(x, args.block))
    sub = x[:args.loop_channels]
    z_v, c_v, l_v = run_vectorised(sub, args.block)
    t0 = time.perf_counter()
    z_p, c_p, l_p = run_python_loop(sub)
    t_loop = time.perf_counter() - t0
    np.testing.assert_allclose(z_v, z_p, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(c_v, c_p, rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(l_v, l_p)
    vec_rate = n / t_core
    loop_rate = sub.size / t_loop
    print(f"core bank (baseline + CUSUM + limit), {args.channels} ch x {args.seconds} s, "
          f"blocks of {args.block}: {vec_rate / 1e6:.1f} M samples/s (1 core)")
    print(f"same algorithm, per-channel Python loop: {loop_rate / 1e6:.3f} M samples/s "
          f"-> ratio {vec_rate / loop_rate:.0f}x (outputs checked equal)")

    specs = [ChannelSpec(f"dev-{c // 4}", ("temperature_c", "flow_l_min", "pressure_bar",
                                           "vibration_rms_mm_s")[c % 4], high=95.0,
                         clear_high=90.0, duration_s=60.0, phys_min=-50.0, phys_max=400.0)
             for c in range(args.channels)]

    def full_bank() -> None:
        bank = DetectorBank(specs, BankConfig())
        for a in range(0, args.seconds, args.block):
            t = np.arange(a, min(a + args.block, args.seconds), dtype=np.int64) * S
            bank.update(t, x[:, a:a + args.block])

    full_bank()
    t_full = median_time(full_bank)
    print(f"full bank (+ sensor health, fusion, alert tracking): {n / t_full / 1e6:.1f} M "
          "samples/s (1 core)")

    if args.skab.is_dir():
        paths = skab.skab_files(args.skab)
        c = skab.run(paths)
        print(f"SKAB ({len(paths)} files): F1 {c.f1:.3f}  FAR {c.far:.2f} %  MAR {c.mar:.2f} %")
    if args.nab.is_dir():
        with tempfile.TemporaryDirectory() as out:
            r = nab.run(args.nab, Path(out))
        for name, sc in r.scores.items():
            print(f"NAB ({r.files} files) {name}: {sc.normalised:.1f}")


if __name__ == "__main__":
    main()
