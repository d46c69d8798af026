"""Vibration bursts: a worn bearing shows its defect frequency in the envelope spectrum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from simulators.waveform import N_SAMPLES, SAMPLE_RATE_HZ, bearing_bursts


def _envelope_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env = np.abs(signal.hilbert(x - x.mean()))
    return np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE_HZ), np.abs(np.fft.rfft(env - env.mean()))


def _burst(severity: float, rpm: float = 1500.0, order: float = 3.6) -> np.ndarray:
    return bearing_bursts(key=np.array([7], dtype=np.uint64), t_us=np.array([10**15]),
                          shaft_rpm=np.array([rpm]), severity=np.array([severity]),
                          bpfo_order=np.array([order]))[0].astype(np.float64)


@pytest.mark.parametrize(("rpm", "order"), [(1500.0, 3.6), (2960.0, 3.12)])
def test_worn_bearing_rings_at_its_outer_race_defect_frequency(rpm: float, order: float) -> None:
    bpfo_hz = rpm / 60 * order
    bin_hz = SAMPLE_RATE_HZ / N_SAMPLES
    freqs, spec = _envelope_spectrum(_burst(0.8, rpm, order))
    band = (freqs > 20) & (freqs < 1000)
    peak_hz = float(freqs[band][np.argmax(spec[band])])
    # The strongest envelope line is BPFO or one of its first harmonics ...
    assert min(abs(peak_hz - k * bpfo_hz) for k in (1, 2, 3)) <= bin_hz
    # ... and BPFO itself stands far above the floor; a healthy bearing shows no such line.
    at_bpfo = spec[np.abs(freqs - bpfo_hz) <= bin_hz].max()
    assert at_bpfo > 10 * np.median(spec[band])
    freqs0, spec0 = _envelope_spectrum(_burst(0.0, rpm, order))
    assert spec0[np.abs(freqs0 - bpfo_hz) <= bin_hz].max() < at_bpfo / 10


def test_healthy_bearing_burst_is_quieter_and_reproducible() -> None:
    healthy, worn = _burst(0.0), _burst(1.0)
    assert np.sqrt(np.mean(worn**2)) > 2 * np.sqrt(np.mean(healthy**2))
    np.testing.assert_array_equal(healthy, _burst(0.0))


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="`severity` must have shape"):
        bearing_bursts(key=np.array([1], dtype=np.uint64), t_us=np.array([0]),
                       shaft_rpm=np.array([1500.0]), severity=np.array([0.1, 0.2]),
                       bpfo_order=np.array([3.6]))
