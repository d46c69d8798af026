"""Which equipment profile each device is watched with: the CRM's equipment-model catalogue,
read with plain SQL (``anomaly/`` stays Django-free).

A device's profile is found through its asset: device → the asset that claimed it
(``service_crm_devicelink``) → the asset's equipment model → that model's profile (its
``service_crm_equipmentmodel`` row and ``service_crm_metricspec`` rows, translated by
:func:`anomaly.profiles.profile_dict` and validated by :func:`anomaly.profiles.parse_profile`).
Device-id naming plays no part. A device no asset has claimed, or whose model has no profile
(no running indicator set), gets generic detection (:func:`anomaly.models.channel_spec`), and so
does a metric its profile does not name. Alerts led by such a metric are *unclassified*: their
failure mode is a guess from the metric's name until the desk classifies one, which may save the
metric's failure mode into the equipment model (a ``service_crm_metricspec`` row, also for a
model with no profile); the catalogue then names that mode for the metric on every device of
the model (:meth:`Catalogue.classified`).

:func:`catalogue_version` is one cheap query the worker polls to notice an edit (a profile
saved in the admin or the API, a device claimed or released, an asset given another model)
without a restart. A database without the CRM's tables (the store alone) has an empty
catalogue.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from anomaly.bank import ChannelSpec
from anomaly.models import channel_spec
from anomaly.profiles import METRIC_COLUMNS, EquipmentProfile, parse_profile, profile_dict
from anomaly.spectral import DEFECTS

Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class Catalogue:
    """Profiles by equipment model, the model of each claimed device, and per model the
    failure mode each metric it names points to (profile or not) and the metrics it names as
    operating inputs or ignored (role; the desk saves them too)."""

    profiles: Mapping[int, EquipmentProfile] = field(default_factory=dict)
    device_model: Mapping[str, int] = field(default_factory=dict)
    version: tuple[Any, ...] = ()
    metric_modes: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    device_asset: Mapping[str, int] = field(default_factory=dict)
    metric_roles: Mapping[int, Mapping[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, devices: Mapping[str, EquipmentProfile]) -> Catalogue:
        """A fixed catalogue: each device watched with the profile given (tests, tools)."""
        ids = {id(p): k for k, p in enumerate({id(p): p for p in devices.values()}.values())}
        profiles = {ids[id(p)]: p for p in devices.values()}
        return cls(profiles, {d: ids[id(p)] for d, p in devices.items()})

    def profile(self, device: str) -> EquipmentProfile | None:
        model = self.device_model.get(device)
        return None if model is None else self.profiles.get(model)

    def spec(self, device: str, metric: str) -> ChannelSpec:
        """The channel's configuration: its model's profile, else generic detection with
        what the model says of the metric (a failure mode, or the role of an input).

        >>> c = Catalogue(device_model={"x-1": 3}, metric_roles={3: {"ambient_temp_c": "input"}})
        >>> s = c.spec("x-1", "ambient_temp_c")
        >>> s.generic, s.scored, c.classified("x-1", "ambient_temp_c")
        (True, False, True)
        >>> c.spec("x-2", "ambient_temp_c").scored
        True
        """
        return channel_spec(device, metric, self.profile(device),
                            mode=self._named_mode(device, metric),
                            role=self._named_role(device, metric))

    def _named_mode(self, device: str, metric: str) -> str:
        model = self.device_model.get(device)
        return "" if model is None else self.metric_modes.get(model, {}).get(metric, "")

    def _named_role(self, device: str, metric: str) -> str:
        model = self.device_model.get(device)
        return "" if model is None else self.metric_roles.get(model, {}).get(metric, "")

    def classified(self, device: str, metric: str) -> bool:
        """Whether the device's equipment model names `metric` (its profile does, or the desk
        saved a failure mode for it): an alert it leads has a known failure mode.

        >>> from anomaly.models import PROFILES
        >>> c = Catalogue.of({"p-1": PROFILES["centrifugal_pump"]})
        >>> c.classified("p-1", "vibration_rms_mm_s"), c.classified("p-1", "particles_ppm")
        (True, False)
        >>> c.classified("nobody", "vibration_rms_mm_s")
        False
        """
        p = self.profile(device)
        return (p is not None and metric in p.metrics) or bool(self._named_mode(device, metric)) \
            or bool(self._named_role(device, metric))

    def event_key(self, device: str) -> str:
        """What orders a device's alert events: its asset when one claimed it (every device
        of an asset in one partition), else the device itself.

        >>> c = Catalogue(device_asset={"p-1": 7, "p-2": 7})
        >>> c.event_key("p-1") == c.event_key("p-2") == "asset:7", c.event_key("p-9")
        (True, 'p-9')
        """
        asset = self.device_asset.get(device)
        return device if asset is None else f"asset:{asset}"

    def bearing_orders(self, device: str) -> NDArray[np.float64]:
        """Defect orders of the device's bearing; NaN when its profile has none."""
        p = self.profile(device)
        if p is None or p.bearing is None:
            return np.full(len(DEFECTS), np.nan)
        return p.bearing.orders()

    def speed_metric(self, device: str) -> str:
        p = self.profile(device)
        return "" if p is None else p.speed_metric


def _has_crm(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('service_crm_equipmentmodel') IS NOT NULL "
                       "AND to_regclass('service_crm_devicelink') IS NOT NULL").fetchone()
    return bool(row and row[0])


def catalogue_version(conn: Conn) -> tuple[Any, ...]:
    """What changes whenever the catalogue does: the latest profile edit, the number of models
    and metrics (a deletion), and a digest of the device → model map."""
    if not _has_crm(conn):
        conn.commit()
        return ()
    row = conn.execute(
        "SELECT (SELECT max(profile_updated_at) FROM service_crm_equipmentmodel), "
        "       (SELECT count(*) FROM service_crm_equipmentmodel), "
        "       (SELECT max(updated_at) FROM service_crm_metricspec), "
        "       (SELECT count(*) FROM service_crm_metricspec), "
        "       (SELECT md5(string_agg(l.device_key || '=' || a.equipment_model_id, ',' "
        "                              ORDER BY l.device_key)) "
        "          FROM service_crm_devicelink l JOIN service_crm_asset a ON a.id = l.asset_id)"
    ).fetchone()
    conn.commit()
    return tuple(row) if row is not None else ()


def read_catalogue(conn: Conn) -> Catalogue:
    """The whole catalogue as the CRM holds it now. A model whose stored profile does not
    validate (it cannot be saved so through the admin or the API) is reported on stderr and
    its devices get generic detection."""
    version = catalogue_version(conn)
    if not version:
        return Catalogue()
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        models = cur.execute(
            "SELECT id, name, kind, running_metric, running_above, bearing_balls, "
            "       bearing_pitch_ratio, speed_metric FROM service_crm_equipmentmodel "
            "WHERE running_metric <> ''").fetchall()
        metrics = cur.execute(
            f"SELECT equipment_model_id, metric, {', '.join(METRIC_COLUMNS)}, settings "  # noqa: S608
            "FROM service_crm_metricspec ORDER BY equipment_model_id, metric").fetchall()
        links = cur.execute(
            "SELECT l.device_key, l.asset_id, a.equipment_model_id "
            "FROM service_crm_devicelink l "
            "JOIN service_crm_asset a ON a.id = l.asset_id").fetchall()
    conn.commit()
    by_model: dict[int, list[dict[str, Any]]] = {}
    modes: dict[int, dict[str, str]] = {}
    roles: dict[int, dict[str, str]] = {}
    for row in metrics:
        by_model.setdefault(int(row["equipment_model_id"]), []).append(row)
        if row["failure_mode"] and row["role"] == "evidence":
            modes.setdefault(int(row["equipment_model_id"]), {})[str(row["metric"])] = \
                str(row["failure_mode"])
        if row["role"] in ("input", "ignored"):
            roles.setdefault(int(row["equipment_model_id"]), {})[str(row["metric"])] = \
                str(row["role"])
    profiles: dict[int, EquipmentProfile] = {}
    for model in models:
        source = f"equipment model {model['name']!r}"
        try:
            raw = profile_dict({**model, "kind": model["kind"] or str(model["name"])},
                               by_model.get(int(model["id"]), []))
            profiles[int(model["id"])] = parse_profile(raw, source)
        except ValueError as exc:
            print(f"catalogue: {exc}; its devices get generic detection", file=sys.stderr)
    return Catalogue(profiles, {str(r["device_key"]): int(r["equipment_model_id"])
                                for r in links}, version, modes,
                     {str(r["device_key"]): int(r["asset_id"]) for r in links}, roles)

