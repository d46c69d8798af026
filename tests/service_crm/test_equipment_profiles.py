"""Equipment models are data: profiles imported into the CRM's catalogue, exported again, edited
with clear field errors, and read by the real detect worker through a device's asset (real
PostgreSQL), so a new kind of machine is watched without a code change."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from anomaly.bank import BankConfig
from anomaly.profiles import load_profiles, parse_profile
from anomaly.worker import DetectWorker, WorkerOptions
from ingest.writer import write_columns
from service_crm import models as m
from service_crm.adapters.profiles import (
    equipment_profile_dict,
    equipment_profile_import,
    equipment_profile_yaml,
    profile_parse,
)
from service_crm.services.alerts import alert_ingest
from service_crm.services.devices import device_claim
from tests import factories as f
from tests.support.anomaly import run_until_caught_up
from tests.support.personas import user_with_role
from web.roles import Role

pytestmark = pytest.mark.db

# A manufacturer's own kind of machine, with metrics and a failure mode nobody has seen.
GEARBOX = """\
kind: wind_gearbox
name: Planetary gearbox PG-3
manufacturer: Nordwind Antriebe
equipment_type: gearbox
running: {metric: input_speed_rpm, above: 100}
metrics:
  input_speed_rpm: {unit: rpm, scored: false}
  oil_sump_temp_c: {unit: °C, healthy: [40, 75], mode: overheating, high: 85.0, clear_high: 80.0,
                    side: 1, min_std: 0.5}
  particle_count_ppm: {unit: ppm, healthy: [null, 40], mode: gear_wear, high: 60.0,
                       clear_high: 50.0, duration_s: 20, drift: true, side: 1, min_std: 1.0}
failure_modes:
  gear_wear: {name: Gear tooth wear, skill: gearbox, labour_hours: 6.0, parts: {GBX-PLANET: 1}}
"""


def _desk(username: str = "dora", role: str = "desk_agent") -> Any:
    """Dora on the service desk (the role that claims devices); with `role`
    "service_manager", Sven who keeps the equipment catalogue."""
    return user_with_role(username, Role(role))


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _parts_for(profile: Any) -> None:
    for fm in profile.failure_modes.values():
        for sku, _ in fm.parts:
            if not m.SparePart.objects.filter(sku=sku).exists():
                f.SparePartFactory(sku=sku)


# ------------------------------------------------------------------ import / export
@pytest.mark.django_db
def test_the_shipped_profiles_survive_the_catalogue_round_trip() -> None:
    for profile in load_profiles().values():
        _parts_for(profile)
        model = equipment_profile_import(profile=profile)
        for back in (parse_profile(equipment_profile_dict(model=model)),
                     parse_profile(yaml.safe_load(equipment_profile_yaml(model=model)))):
            assert back.metrics == profile.metrics
            assert (back.kind, back.run_metric, back.run_level, back.bearing,
                    back.speed_metric) == (profile.kind, profile.run_metric,
                                           profile.run_level, profile.bearing,
                                           profile.speed_metric)
            assert back.failure_modes == profile.failure_modes
    assert m.EquipmentModel.objects.count() == 4
    pump = m.EquipmentModel.objects.get(name="Centrifugal pump CP-40 (VFD)")
    suction = pump.metrics.get(metric="suction_pressure_bar")
    assert (suction.unit, suction.role, suction.failure_mode, suction.drift,
            suction.healthy_low) == ("bar", "evidence", "cavitation", True, 0.3)
    assert pump.metrics.get(metric="speed_rpm").role == "input"
    cav = pump.failure_modes.get(code="cavitation")
    assert sorted(cav.bom.values_list("part__sku", flat=True)) == ["PMP-002", "PMP-009"]


@pytest.mark.django_db
def test_the_demo_seeds_the_shipped_profiles() -> None:
    call_command("seed_demo", "--assets", "8", stdout=io.StringIO())
    shipped = load_profiles()
    for link in m.DeviceLink.objects.select_related("asset__equipment_model"):
        stored = parse_profile(equipment_profile_dict(model=link.asset.equipment_model))
        assert stored.metrics == shipped[link.device_key.split("-")[0]].metrics


@pytest.mark.django_db
def test_reimporting_a_profile_updates_the_model_in_place() -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    profile = profile_parse(data=yaml.safe_load(GEARBOX))
    first = equipment_profile_import(profile=profile)
    edited = yaml.safe_load(GEARBOX)
    del edited["metrics"]["oil_sump_temp_c"]
    edited["metrics"]["particle_count_ppm"]["high"] = 55.0
    second = equipment_profile_import(profile=profile_parse(data=edited))
    assert second.pk == first.pk
    assert sorted(second.metrics.values_list("metric", flat=True)) == [
        "input_speed_rpm", "particle_count_ppm"]
    assert second.metrics.get(metric="particle_count_ppm").high == 55.0
    assert second.profile_updated_at >= first.profile_updated_at


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    (("metrics", "oil_sump_temp_c", "high", "hot"), "metrics.oil_sump_temp_c.high"),
    (("metrics", "oil_sump_temp_c", "clear_high", 90.0), "metrics.oil_sump_temp_c.clear_high"),
    (("metrics", "particle_count_ppm", "side", 2), "metrics.particle_count_ppm.side"),
    (("metrics", "particle_count_ppm", "witnesses", ["particle_count_ppm"]),
     "metrics.particle_count_ppm.witnesses"),
    (("metrics", "particle_count_ppm", "sensor_range", [500, 0]),
     "metrics.particle_count_ppm.sensor_range"),
    (("failure_modes", "gear_wear", "labour_hours", -1), "failure_modes.gear_wear.labour_hours"),
])
def test_a_bad_profile_is_refused_naming_the_field(change: tuple[Any, ...], field: str) -> None:
    data = yaml.safe_load(GEARBOX)
    section, name, key, value = change
    data[section][name][key] = value
    with pytest.raises(ValidationError) as err:
        profile_parse(data=data)
    assert list(err.value.message_dict) == [field]
    assert not m.EquipmentModel.objects.exists()


@pytest.mark.django_db
def test_a_profile_naming_an_unknown_part_changes_nothing() -> None:
    with pytest.raises(ValidationError) as err:
        equipment_profile_import(profile=profile_parse(data=yaml.safe_load(GEARBOX)))
    assert err.value.message_dict == {
        "failure_modes.gear_wear.parts": ["No spare part numbered ['GBX-PLANET']."]}
    assert not m.EquipmentModel.objects.exists()
    with pytest.raises(ValidationError, match="needs the equipment model's `name`"):
        profile_parse(data={k: v for k, v in yaml.safe_load(GEARBOX).items() if k != "name"})


@pytest.mark.django_db
def test_a_metric_edited_in_the_admin_is_validated_like_the_profile() -> None:
    model = f.EquipmentModelFactory()
    spec = m.MetricSpec(equipment_model=model, metric="oil_c", unit="°C", high=85.0,
                        clear_high=90.0)
    with pytest.raises(ValidationError) as err:
        spec.full_clean()
    assert "clear_high" in err.value.message_dict
    spec.clear_high = 80.0
    spec.settings = {"side": 2}
    with pytest.raises(ValidationError) as err:
        spec.full_clean()
    assert "must be -1, 0 or 1" in err.value.message_dict["settings"][0]
    spec.settings = {"sensor_range": [0, "hot"]}
    with pytest.raises(ValidationError) as err:
        spec.full_clean()
    assert "sensor_range: must be a number" in err.value.message_dict["settings"][0]
    spec.settings = {"high": 3}
    with pytest.raises(ValidationError, match="have fields of their own"):
        spec.full_clean()
    spec.settings = {"side": 1, "partners": []}
    spec.full_clean()
    model.running_metric = "rpm"
    with pytest.raises(ValidationError) as err:
        model.full_clean()
    assert "running_above" in err.value.message_dict


@pytest.mark.django_db
def test_the_command_imports_and_exports_profiles(tmp_path: Path) -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    src = tmp_path / "gearbox.yaml"
    src.write_text(GEARBOX, encoding="utf-8")
    out = io.StringIO()
    call_command("equipment_profile", "import", str(src), stdout=out)
    assert "imported Planetary gearbox PG-3 (3 metrics, 1 failure modes)" in out.getvalue()
    call_command("equipment_profile", "export", "--out", str(tmp_path / "out"),
                 stdout=io.StringIO())
    again = parse_profile(yaml.safe_load((tmp_path / "out" / "wind_gearbox.yaml").read_text()))
    assert again.metrics == parse_profile(yaml.safe_load(GEARBOX)).metrics
    src.write_text(GEARBOX.replace("high: 60.0", "high: lots"), encoding="utf-8")
    with pytest.raises(CommandError, match=r"metrics\.particle_count_ppm\.high: .*must be a "
                                           r"number"):
        call_command("equipment_profile", "import", str(src), stdout=io.StringIO())


# --------------------------------------------------------------------------- the API
@pytest.mark.django_db
def test_the_api_adds_a_model_from_its_profile_and_answers_it_as_yaml() -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    sven = _client(_desk("sven", "service_manager"))
    body = yaml.safe_load(GEARBOX)
    r = sven.post("/api/v1/equipment-models/", json.dumps(body),
                  content_type="application/json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert (created["name"], created["kind"], created["has_profile"]) == (
        "Planetary gearbox PG-3", "wind_gearbox", True)
    assert parse_profile(created["profile"]).metrics == parse_profile(body).metrics
    r = sven.get(f"/api/v1/equipment-models/{created['id']}/profile/")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/yaml")
    assert parse_profile(yaml.safe_load(r.content)).failure_modes == \
        parse_profile(body).failure_modes
    body["metrics"]["particle_count_ppm"]["high"] = "lots"
    r = sven.put(f"/api/v1/equipment-models/{created['id']}/", json.dumps(body),
                 content_type="application/json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == ["metrics.particle_count_ppm.high"]
    dora = _client(_desk())
    assert dora.get("/api/v1/equipment-models/").json()["results"][0]["name"] == \
        "Planetary gearbox PG-3"
    r = dora.post("/api/v1/equipment-models/", json.dumps(yaml.safe_load(GEARBOX)),
                  content_type="application/json")
    assert r.status_code == 403


# ----------------------------------------------- the detect worker reads the catalogue
S = 1_000_000
START_US = 1_796_000_000 * S          # 2026-11-29, a fixed instant
N_S = 3600
WEAR_FROM_S = 2400
# An hour of history: generic channels judged without the day an unknown machine first learns.
SHORT_HISTORY = BankConfig(generic_learn_s=0.0)
# Device ids that say nothing about the machine: the catalogue alone makes them gearboxes.
CLAIMED, UNCLAIMED = "nordwind-t17.gbx", "nordwind-t18.gbx"


def _dsn() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _write_gearboxes(conn: psycopg.Connection[Any]) -> None:
    """Both gearboxes run for an hour at 1 Hz; from minute 40 each one's oil carries more and
    more wear particles (20 ppm -> 100 ppm)."""
    rng = np.random.default_rng(42)
    t = START_US + np.arange(N_S, dtype=np.int64) * S
    for device in (CLAIMED, UNCLAIMED):
        particles = 20 + rng.normal(0, 1.0, N_S)
        particles[WEAR_FROM_S:] += np.linspace(0, 80, N_S - WEAR_FROM_S)
        for metric, v in (("input_speed_rpm", 1500 + rng.normal(0, 5, N_S)),
                          ("oil_sump_temp_c", 65 + rng.normal(0, 0.5, N_S)),
                          ("particle_count_ppm", particles)):
            write_columns(conn, device=[device] * N_S, metric=[metric] * N_S, time=t, value=v)


@pytest.fixture
def store(transactional_db: None) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to the test database as the worker has one; the store rows it
    writes (not Django-managed) are removed afterwards."""
    with psycopg.connect(_dsn()) as conn:
        yield conn
        conn.rollback()
        with conn.transaction():
            conn.execute("DELETE FROM anomaly_outbox")
            conn.execute("DELETE FROM anomaly_checkpoints")
            conn.execute("DELETE FROM telemetry")
            conn.execute("DELETE FROM devices WHERE device_key = ANY(%s)",
                         ([CLAIMED, UNCLAIMED],))


@pytest.mark.django_db(transaction=True)
def test_a_gearbox_added_through_its_profile_is_watched_without_a_code_change(
        store: psycopg.Connection[Any]) -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    # Sven adds the model through the API, from its profile; Dora claims the device for an
    # asset of that model. No code knows what a gearbox is.
    r = _client(_desk("sven", "service_manager")).post(
        "/api/v1/equipment-models/", json.dumps(yaml.safe_load(GEARBOX)),
        content_type="application/json")
    assert r.status_code == 201, r.content
    model = m.EquipmentModel.objects.get(pk=r.json()["id"])
    _write_gearboxes(store)
    asset = f.AssetFactory(equipment_model=model)
    r = _client(_desk()).post(f"/api/v1/devices/{CLAIMED}/claim/", {"asset": asset.pk},
                              content_type="application/json")
    assert r.status_code == 200, r.content

    worker = DetectWorker(store, WorkerOptions(name="gbx", settle_s=0, max_span_s=600),
                          SHORT_HISTORY)
    events = run_until_caught_up(worker)
    opened = [(e.device, e.kind, e.failure_mode) for e in events if e.state == "open"]
    # The claimed gearbox: its profile's failure mode, from the particle count's limit.
    assert (CLAIMED, "equipment", "gear_wear") in opened
    first = next(e for e in events if e.device == CLAIMED and e.state == "open")
    assert first.opened_at.timestamp() >= (START_US / S) + WEAR_FROM_S
    assert first.evidence[0].metric == "particle_count_ppm"
    # Its twin that no asset has claimed is still watched, generically: the same wear is
    # seen, but nothing tells the detector what it means.
    twin = [mode for dev, kind, mode in opened if dev == UNCLAIMED and kind == "equipment"]
    assert twin
    assert "gear_wear" not in twin
    # The CRM files it under the gearbox's failure mode, with that mode's parts list.
    result = alert_ingest(event=first)
    episode = m.Episode.objects.get(pk=result.episode_id)
    assert episode.failure_mode is not None
    assert (episode.failure_mode.code, episode.failure_mode.name) == ("gear_wear",
                                                                      "Gear tooth wear")
    assert list(episode.failure_mode.bom.values_list("part__sku", flat=True)) == ["GBX-PLANET"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_picks_up_an_edited_profile_without_a_restart(
        store: psycopg.Connection[Any]) -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    model = equipment_profile_import(profile=profile_parse(data=yaml.safe_load(GEARBOX)))
    _write_gearboxes(store)
    worker = DetectWorker(store, WorkerOptions(name="gbx-reload", settle_s=0, max_span_s=600,
                                               reload_s=0), SHORT_HISTORY)
    worker.step()                            # no device claimed yet: generic detection
    spec = {(s.asset, s.metric): s for s in worker.bank.specs}
    assert spec[(CLAIMED, "particle_count_ppm")].mode == "abnormal_behaviour"
    assert not worker.reload_if_changed()
    device_claim(device_key=CLAIMED, asset=f.AssetFactory(equipment_model=model),
                 actor=_desk())
    assert worker.reload_if_changed()
    spec = {(s.asset, s.metric): s for s in worker.bank.specs}
    assert (spec[(CLAIMED, "particle_count_ppm")].mode,
            spec[(CLAIMED, "particle_count_ppm")].high) == ("gear_wear", 60.0)
    assert spec[(UNCLAIMED, "particle_count_ppm")].mode == "abnormal_behaviour"
    row = model.metrics.get(metric="particle_count_ppm")
    row.high, row.clear_high = 45.0, 40.0
    row.full_clean()
    row.save()                                     # as the admin's inline form does
    assert worker.reload_if_changed()
    spec = {(s.asset, s.metric): s for s in worker.bank.specs}
    assert spec[(CLAIMED, "particle_count_ppm")].high == 45.0
    run_until_caught_up(worker)                    # the reloaded bank keeps running


# ------------------------------------------------------------------------- the admin
@pytest.mark.django_db
def test_the_admin_edits_a_profile_and_exports_it_as_yaml() -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    model = equipment_profile_import(profile=profile_parse(data=yaml.safe_load(GEARBOX)))
    boss = _client(f.UserFactory(username="admin", is_staff=True, is_superuser=True))
    page = boss.get(f"/admin/service_crm/equipmentmodel/{model.pk}/change/")
    assert page.status_code == 200
    assert b"Equipment profile (what the anomaly detector knows)" in page.content
    assert b"particle_count_ppm" in page.content
    r = boss.post("/admin/service_crm/equipmentmodel/",
                  {"action": "export_profiles", "_selected_action": [model.pk]})
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/yaml")
    exported = parse_profile(next(yaml.safe_load_all(r.content)))
    assert exported.metrics == parse_profile(yaml.safe_load(GEARBOX)).metrics


@pytest.mark.django_db
def test_the_admin_imports_a_pasted_profile_and_lists_its_errors_by_field() -> None:
    f.SparePartFactory(sku="GBX-PLANET")
    boss = _client(f.UserFactory(username="admin", is_staff=True, is_superuser=True))
    listing = boss.get("/admin/service_crm/equipmentmodel/")
    assert b"Import a profile (YAML)" in listing.content
    url = "/admin/service_crm/equipmentmodel/import-profile/"
    bad = boss.post(url, {"text": GEARBOX.replace("high: 60.0", "high: lots")})
    assert bad.status_code == 200
    assert b"metrics.particle_count_ppm.high: " in bad.content
    assert not m.EquipmentModel.objects.exists()
    r = boss.post(url, {"text": GEARBOX})
    model = m.EquipmentModel.objects.get(name="Planetary gearbox PG-3")
    assert r.status_code == 302
    assert r["Location"].endswith(f"/equipmentmodel/{model.pk}/change/")
    assert m.AuditLog.objects.filter(action="equipment_profile.import").exists()
    nobody = _client(f.UserFactory(username="clerk", is_staff=True))
    assert nobody.get(url).status_code == 403


# ------------------------------------------------- unclassified alerts, classified by the desk
def _guessed_first_alert(store: psycopg.Connection[Any], name: str
                         ) -> tuple[m.EquipmentModel, DetectWorker, Any]:
    """The gearbox's profile as first written (nobody thought of the particle counter), the
    claimed gearbox's hour of wear, and the first equipment alert a worker named `name`
    raises on it (led by the counter, so its failure mode is only a guess)."""
    f.SparePartFactory(sku="GBX-PLANET")
    raw = yaml.safe_load(GEARBOX)
    del raw["metrics"]["particle_count_ppm"]
    model = equipment_profile_import(profile=profile_parse(data=raw))
    _write_gearboxes(store)
    asset = f.AssetFactory(equipment_model=model)
    device_claim(device_key=CLAIMED, asset=asset, actor=_desk())
    worker = DetectWorker(store, WorkerOptions(name=name, settle_s=0, max_span_s=600,
                                               reload_s=0), SHORT_HISTORY)
    events = run_until_caught_up(worker)
    first = next(e for e in events if e.device == CLAIMED and e.kind == "equipment"
                 and e.state == "open")
    return model, worker, first


@pytest.mark.django_db(transaction=True)
def test_an_alert_the_model_cannot_name_is_unclassified_until_the_desk_classifies_it(
        store: psycopg.Connection[Any]) -> None:
    model, worker, first = _guessed_first_alert(store, "gbx-classify")
    # Watched generically: the wear is seen, but its failure mode is only a guess.
    assert first.evidence[0].metric == "particle_count_ppm"
    assert first.classified is False
    assert first.failure_mode != "gear_wear"
    result = alert_ingest(event=first)
    episode = m.Episode.objects.get(pk=result.episode_id)
    assert m.Alert.objects.get(pk=result.alert_id).classified is False
    dora = _client(_desk())
    page = dora.get(f"/desk/episodes/{episode.pk}/")
    assert page.status_code == 200
    assert b'data-testid="episode-unclassified"' in page.content
    assert b"particle_count_ppm" in page.content
    assert dora.get("/desk/alerts/?unclassified=1").content.count(b"data-alert=") == 1

    # A failure mode the model does not have is refused by its field; other roles may not.
    r = dora.post(f"/desk/episodes/{episode.pk}/classify/", {"failure_mode": "made_up"})
    assert r.status_code == 400
    assert b"made_up" in r.content
    sales = _client(_desk("sal", "sales_manager"))
    assert sales.post(f"/desk/episodes/{episode.pk}/classify/",
                      {"failure_mode": "gear_wear", "remember": "on"}).status_code == 403

    r = dora.post(f"/desk/episodes/{episode.pk}/classify/",
                  {"failure_mode": "gear_wear", "remember": "on"})
    assert r.status_code == 302, r.content
    episode.refresh_from_db()
    assert (episode.failure_mode_code, episode.failure_mode.code) == ("gear_wear", "gear_wear")
    alert = m.Alert.objects.get(pk=result.alert_id)
    assert (alert.classified, alert.failure_mode_code) == (True, "gear_wear")
    spec = model.metrics.get(metric="particle_count_ppm")
    assert (spec.role, spec.failure_mode) == ("evidence", "gear_wear")
    assert set(m.AuditLog.objects.filter(actor__username="dora").values_list(
        "action", flat=True)) >= {"episode.classify", "metric_spec.classify"}
    # A later revision of the same alert, still a guess, does not undo the desk's word.
    later = alert_ingest(event=replace(first, revision=first.revision + 1, state="update"))
    assert later.episode_id == episode.pk
    assert m.Alert.objects.get(pk=result.alert_id).failure_mode_code == "gear_wear"
    # The worker reloads the model: the metric now has a known failure mode on every gearbox.
    assert worker.reload_if_changed()
    assert worker.catalogue.classified(CLAIMED, "particle_count_ppm")
    spec_now = {(s.asset, s.metric): s for s in worker.bank.specs}
    assert spec_now[(CLAIMED, "particle_count_ppm")].mode == "gear_wear"
    assert not worker.catalogue.classified(UNCLAIMED, "particle_count_ppm")


@pytest.mark.django_db
def test_classifying_into_a_live_episode_of_that_mode_merges_them() -> None:
    from service_crm.services.episodes import episode_classify

    f.SparePartFactory(sku="GBX-PLANET")
    model = equipment_profile_import(profile=profile_parse(data=yaml.safe_load(GEARBOX)))
    asset = f.AssetFactory(equipment_model=model)
    now = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    known = m.Episode.objects.create(asset=asset, failure_mode_code="gear_wear", opened_at=now,
                                     last_alert_at=now, peak_severity="warning")
    guessed = m.Episode.objects.create(asset=asset, failure_mode_code="abnormal_behaviour",
                                       opened_at=now - dt.timedelta(hours=1),
                                       last_alert_at=now, peak_severity="warning")
    alert = m.Alert.objects.create(
        alert_id="x:equipment:1", revision=0, state="open", device_key="x", asset=asset,
        episode=guessed, kind="equipment", severity="warning",
        failure_mode_code="abnormal_behaviour", score=0.6, opened_at=now, at=now,
        evidence=[{"metric": "gear_noise_db", "detector": "baseline"}], classified=False)
    result = episode_classify(actor=_desk(), episode=guessed, code="gear_wear", remember=False)
    assert (result.episode.pk, result.merged, result.remembered) == (known.pk, True, ())
    guessed.refresh_from_db()
    known.refresh_from_db()
    alert.refresh_from_db()
    assert guessed.status == "closed"
    assert (alert.episode_id, alert.classified) == (known.pk, True)
    assert known.opened_at == now - dt.timedelta(hours=1)
    assert not model.metrics.filter(metric="gear_noise_db").exists()


@pytest.mark.django_db(transaction=True)
def test_the_desk_calls_an_input_not_a_fault_and_the_worker_stops_scoring_it(
        store: psycopg.Connection[Any]) -> None:
    # A machine nobody described fully: its ambient-like reading (here the particle counter)
    # led an alert the detector could only guess. The desk says it is an operating input, not
    # a fault: the episode closes, and the model remembers, on every machine of that model.
    from rest_framework.test import APIClient

    model, worker, first = _guessed_first_alert(store, "gbx-input")
    assert first.evidence[0].metric == "particle_count_ppm"
    assert first.classified is False
    result = alert_ingest(event=first)
    episode = m.Episode.objects.get(pk=result.episode_id)
    assert worker.catalogue.spec(CLAIMED, "particle_count_ppm").scored

    dora = _client(_desk())
    page = dora.get(f"/desk/episodes/{episode.pk}/")
    assert b'data-testid="episode-not-a-fault"' in page.content
    url = f"/desk/episodes/{episode.pk}/not-a-fault/"
    assert _client(_desk("sal", "sales_manager")).post(url).status_code == 403
    r = dora.post(url)
    assert r.status_code == 302, r.content
    episode.refresh_from_db()
    assert episode.status == "closed"
    assert episode.closed_at is not None
    assert m.Alert.objects.get(pk=result.alert_id).classified is True
    spec = model.metrics.get(metric="particle_count_ppm")
    assert (spec.role, spec.failure_mode) == ("input", "")
    assert set(m.AuditLog.objects.filter(actor__username="dora").values_list(
        "action", flat=True)) >= {"episode.not_a_fault", "metric_spec.classify"}
    # Asked again, nothing is left to call an input: a 400 that says so, by the button.
    again = dora.post(url)
    assert again.status_code == 400
    assert b"nothing to call an operating input" in again.content
    api = APIClient()
    api.force_authenticate(_desk())
    r = api.post(f"/api/v1/episodes/{episode.pk}/not-a-fault/", {}, format="json")
    assert r.status_code == 400
    assert "operating input" in r.content.decode()
    # The worker reloads the model: the metric is now a sensor, never evidence of a fault.
    assert worker.reload_if_changed()
    spec_now = {(s.asset, s.metric): s for s in worker.bank.specs}
    assert not spec_now[(CLAIMED, "particle_count_ppm")].scored
    assert spec_now[(UNCLAIMED, "particle_count_ppm")].scored
    assert worker.catalogue.classified(CLAIMED, "particle_count_ppm")


@pytest.mark.django_db
def test_not_a_fault_through_the_api_closes_the_episode_and_saves_the_input() -> None:
    from rest_framework.test import APIClient

    from service_crm.services.episodes import episode_not_a_fault

    model = f.EquipmentModelFactory()
    asset = f.AssetFactory(equipment_model=model)
    now = dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)
    ep = m.Episode.objects.create(asset=asset, failure_mode_code="overheating", opened_at=now,
                                  last_alert_at=now, peak_severity="warning")
    m.Alert.objects.create(
        alert_id="y:equipment:1", revision=0, state="open", device_key="y", asset=asset,
        episode=ep, kind="equipment", severity="warning", failure_mode_code="overheating",
        score=0.7, opened_at=now, at=now, classified=False,
        evidence=[{"metric": "ambient_temp_c", "detector": "baseline"}])
    api = APIClient()
    url = f"/api/v1/episodes/{ep.pk}/not-a-fault/"
    api.force_authenticate(user_with_role("cust", Role.SALES_MANAGER))
    assert api.post(url, {}, format="json").status_code == 403
    api.force_authenticate(_desk())
    assert api.post(url, {"remember": "perhaps"}, format="json").status_code == 400
    r = api.post(url, {}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "closed"
    assert model.metrics.get(metric="ambient_temp_c").role == "input"
    with pytest.raises(ValidationError):
        episode_not_a_fault(actor=_desk(), episode=ep)
