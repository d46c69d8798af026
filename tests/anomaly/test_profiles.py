"""Equipment profiles as data: the shipped files, validation, and a new kind of machine watched
without a code change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.catalogue import Catalogue
from anomaly.models import BEARINGS, MULTIVARIATE, PROFILES, SPEED_METRIC, channel_spec
from anomaly.profiles import (
    load_profile,
    load_profiles,
    metric_columns,
    parse_metric,
    parse_profile,
    profile_dict,
)
from evaluation.offline import run_bank

GEARBOX = """\
# A manufacturer's own kind: metrics nobody has seen.
kind: wind_gearbox
device_prefix: gbx
running: {metric: input_speed_rpm, above: 100}
metrics:
  input_speed_rpm: {scored: false}
  oil_sump_temp_c: {mode: overheating, high: 85.0, clear_high: 80.0, side: 1, min_std: 0.5}
  particle_count_ppm: {mode: gear_wear, drift: true, side: 1, min_std: 1.0}
"""


def test_the_four_shipped_kinds_are_profile_files() -> None:
    # Keyed by kind, the simulator's equipment-model names: no device-id naming involved.
    assert sorted(PROFILES) == ["centrifugal_pump", "chiller", "cnc_spindle", "screw_compressor"]
    assert sorted(MULTIVARIATE) == ["centrifugal_pump", "chiller", "screw_compressor"]
    assert set(MULTIVARIATE["centrifugal_pump"].values()) == {"log"}
    assert sorted(BEARINGS) == sorted(PROFILES)
    assert SPEED_METRIC == {"centrifugal_pump": "speed_rpm", "cnc_spindle": "speed_rpm"}
    cmp = PROFILES["screw_compressor"]
    s = channel_spec("cmp-0007", "discharge_temp_c", cmp)
    assert (s.mode, s.high, s.clear_high, s.transform, s.partners, s.side) == (
        "cooling_failure", 80.0, 76.0, "rise_over_ambient", ("ambient_temp_c",), 1)
    assert channel_spec("cmp-0007", "motor_current_a", cmp).run_level == 5.0
    # Witnesses: a sudden change of these metrics alone is the sensor, not the machine.
    assert channel_spec("chl-0002", "chw_supply_temp_c", PROFILES["chiller"]).witnesses == (
        "chw_return_temp_c",)
    assert channel_spec("pmp-0002", "discharge_pressure_bar",
                        PROFILES["centrifugal_pump"]).witnesses == ("flow_l_min",
                                                                   "motor_current_a")


def test_a_gearbox_profile_is_watched_without_a_code_change(tmp_path: Path) -> None:
    (tmp_path / "gearbox.yaml").write_text(GEARBOX)
    gearbox = next(iter(load_profiles(tmp_path).values()))
    metrics = ["input_speed_rpm", "oil_sump_temp_c", "particle_count_ppm"]
    specs = [channel_spec(d, m, gearbox) for d in ("gbx-1", "gbx-2") for m in metrics]
    assert specs[0].run_level == 100.0
    assert not specs[0].scored
    assert specs[1].mode == "overheating"
    rng = np.random.default_rng(42)
    n = 7200
    x = np.empty((6, n))
    x[[0, 3]] = 1500 + rng.normal(0, 5, (2, n))
    x[[1, 4]] = 65 + rng.normal(0, 0.5, (2, n))
    x[[2, 5]] = 20 + rng.normal(0, 1.0, (2, n))
    x[1, 4000:] += np.linspace(0, 30, n - 4000)       # gbx-1 runs hot, past its limit
    r = run_bank(specs, np.arange(n, dtype=np.int64) * 1_000_000, x)
    assert r.assets == ["gbx-1", "gbx-2"]
    assert not r.alert[:, :4000].any()
    assert r.alert[0, 4000:].any()
    assert not r.alert[1].any()


def test_a_bad_profile_is_refused_naming_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GEARBOX.replace("side: 1, min_std: 0.5", "side: 2"))
    with pytest.raises(ValueError, match=r"bad\.yaml: metrics\.oil_sump_temp_c\.side"):
        load_profile(bad)
    bad.write_text(GEARBOX.replace("high: 85.0", "high: hot"))
    with pytest.raises(ValueError, match=r"metrics\.oil_sump_temp_c\.high: must be a number"):
        load_profile(bad)
    bad.write_text(GEARBOX.replace("drift: true", "partners: [nothing]"))
    with pytest.raises(ValueError, match=r"partners names unknown metrics \['nothing'\]"):
        load_profile(bad)
    bad.write_text(GEARBOX.replace("drift: true", "witnesses: [oil_sump_temp_c, nothing]"))
    with pytest.raises(ValueError, match=r"particle_count_ppm\.witnesses names unknown metrics "
                                         r"\['nothing'\]"):
        load_profile(bad)
    bad.write_text(GEARBOX.replace("drift: true", "witnesses: [particle_count_ppm]"))
    with pytest.raises(ValueError, match=r"particle_count_ppm\.witnesses: a metric cannot "
                                         r"witness itself"):
        load_profile(bad)
    bad.write_text(GEARBOX.replace("drift: true", "witnesses: oil_sump_temp_c"))
    with pytest.raises(ValueError, match=r"particle_count_ppm\.witnesses: must be a list"):
        load_profile(bad)
    bad.write_text("kind: [")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_profile(bad)
    with pytest.raises(ValueError, match="`running` must be"):
        parse_profile({"kind": "k", "device_prefix": "k", "metrics": {"a": {}}})
    (tmp_path / "bad.yaml").unlink()
    (tmp_path / "a.yaml").write_text(GEARBOX)
    (tmp_path / "b.yaml").write_text(GEARBOX)
    with pytest.raises(ValueError, match="device_prefix 'gbx' is already used"):
        load_profiles(tmp_path)


def test_an_ignored_metric_is_neither_evidence_nor_checked() -> None:
    p = parse_profile({"kind": "k", "running": {"metric": "a_rpm", "above": 1},
                       "metrics": {"a_rpm": {"scored": False},
                                   "door_open_pct": {"ignored": True}}})
    assert p.metrics["door_open_pct"].role == "ignored"
    assert p.metrics["a_rpm"].role == "input"
    spec = channel_spec("x", "door_open_pct", p)
    assert (spec.scored, spec.drift, spec.stuck, spec.steps) == (False, False, False, True)
    assert np.isnan(spec.phys_min)
    with pytest.raises(ValueError, match="an ignored metric cannot be scored"):
        parse_profile({"kind": "k", "running": {"metric": "a", "above": 1},
                       "metrics": {"a": {"ignored": True, "scored": True}}})


def test_a_sensor_range_says_what_the_sensor_can_read_and_overload_is_not_a_fault() -> None:
    # By unit suffix, a percentage may pass 100 (a spindle cutting hard at 110 % load is the
    # machine, not a broken sensor); a profile narrows or widens what the sensor can read.
    generic = channel_spec("mill-1", "spindle_load_pct", None)
    assert (generic.phys_min, generic.phys_max) == (0.0, 1000.0)
    p = parse_profile({"kind": "k", "running": {"metric": "a_rpm", "above": 1},
                       "metrics": {"a_rpm": {"scored": False},
                                   "load_pct": {"sensor_range": [0, 200]},
                                   "level_pct": {"sensor_range": [None, 100]}}})
    assert (channel_spec("x", "load_pct", p).phys_min,
            channel_spec("x", "load_pct", p).phys_max) == (0.0, 200.0)
    assert channel_spec("x", "level_pct", p).phys_max == 100.0
    assert channel_spec("x", "level_pct", p).phys_min == 0.0          # the suffix's low end
    # It rides in the catalogue's settings and comes back the same.
    cols = metric_columns(p.metrics["load_pct"])
    assert cols["settings"] == {"sensor_range": [0.0, 200.0]}
    back = profile_dict({"kind": "k", "running_metric": "a_rpm", "running_above": 1},
                        [{"metric": "load_pct", **cols}])
    assert parse_profile(back).metrics["load_pct"].sensor_range == (0.0, 200.0)
    for bad, why in (([200, 0], "low must be below high"), ([1], r"must be \[low, high\]"),
                     (["a", 1], "must be a number")):
        with pytest.raises(ValueError, match=rf"m\.sensor_range: {why}"):
            parse_metric({"sensor_range": bad}, "m")
    assert PROFILES["cnc_spindle"].metrics["spindle_load_pct"].sensor_range == (0.0, 200.0)


def test_a_device_is_watched_with_its_catalogue_profile_whatever_its_id() -> None:
    cat = Catalogue.of({"line-3/press": PROFILES["centrifugal_pump"]})
    assert cat.spec("line-3/press", "vibration_rms_mm_s").high == 4.5
    assert cat.speed_metric("line-3/press") == "speed_rpm"
    assert not np.isnan(cat.bearing_orders("line-3/press")).any()
    # A pump-looking id with no catalogue entry is generic: the id tells nothing.
    assert np.isnan(cat.spec("pmp-0001", "vibration_rms_mm_s").high)
    assert np.isnan(cat.bearing_orders("pmp-0001")).all()
