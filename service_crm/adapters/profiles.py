"""Equipment profiles in and out of the CRM's catalogue.

A profile (the YAML format of :mod:`anomaly.profiles`) is the readable form of one equipment
model: its catalogue fields, the detector's settings (running indicator, bearing, per metric
role, limits, healthy range, drift) and its failure modes with their parts lists. Importing one
creates or updates the equipment model of that ``name``, its metrics and failure modes;
exporting writes the same format back. The detect worker reads the stored rows directly, so an
import takes effect on the running worker at its next catalogue poll.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import yaml
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from anomaly.profiles import EquipmentProfile, dump_profile, metric_columns, parse_profile
from anomaly.profiles import profile_dict as columns_to_profile
from service_crm.models import BomLine, EquipmentModel, FailureMode, MetricSpec, SparePart
from service_crm.services.audit import audit_record, snapshot

# "<source>: metrics.oil_c.high: must be a number" -> "metrics.oil_c.high"
_PATH = re.compile(r"^(?:.*?: )?((?:metrics|failure_modes|running|bearing)[\w.\-]*"
                   r"|contract_list_price)[:.]? ")


def profile_error(exc: ValueError, source: str) -> ValidationError:
    """A profile's validation error, keyed by the field it names (``metrics.<name>.<key>``,
    ``failure_modes.<code>...``, ``running``...), else by ``profile``."""
    message = str(exc).removeprefix(f"{source}: ")
    match = _PATH.match(message)
    return ValidationError({match.group(1) if match else "profile": message})


def profile_parse(*, data: Any, source: str = "profile") -> EquipmentProfile:
    """Validate a profile (parsed YAML / JSON); a :class:`ValidationError` names the field."""
    try:
        profile = parse_profile(data, source)
    except ValueError as exc:
        raise profile_error(exc, source) from None
    if not profile.name:
        raise ValidationError({"name": "A profile imported into the catalogue needs the "
                                       "equipment model's `name`."})
    return profile


def profile_load_yaml(*, text: str, source: str = "profile") -> EquipmentProfile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError({"profile": f"{source}: not valid YAML ({exc})"}) from None
    return profile_parse(data=data, source=source)


@transaction.atomic
def equipment_profile_import(*, profile: EquipmentProfile,
                             actor: AbstractBaseUser | None = None,
                             model: EquipmentModel | None = None) -> EquipmentModel:
    """Create or update the equipment model named by `profile` (or `model`, renaming it) with
    everything the profile says. Metrics the profile does not name are removed; failure modes
    it does not name are kept (tickets and episodes may refer to them)."""
    now = timezone.now()
    if model is None:
        model = EquipmentModel.objects.select_for_update().filter(name=profile.name).first()
    before = snapshot(model) if model is not None else None
    if model is None:
        model = EquipmentModel(name=profile.name)
    model.name = profile.name
    model.manufacturer = profile.manufacturer or model.manufacturer
    model.equipment_type = (profile.equipment_type or model.equipment_type
                            or profile.kind)[:40]
    if profile.contract_list_price is not None:
        model.contract_list_price = Decimal(str(profile.contract_list_price))
    model.kind = profile.kind
    model.running_metric = profile.run_metric
    model.running_above = profile.run_level
    model.bearing_balls = profile.bearing.balls if profile.bearing else None
    model.bearing_pitch_ratio = profile.bearing.pitch_ratio if profile.bearing else None
    model.speed_metric = profile.speed_metric
    model.full_clean()
    model.save()
    audit_record(actor=actor, action="equipment_profile.import", obj=model, before=before, at=now)
    MetricSpec.objects.filter(equipment_model=model).exclude(
        metric__in=list(profile.metrics)).delete()
    for name, cfg in profile.metrics.items():
        spec = MetricSpec.objects.filter(equipment_model=model, metric=name).first() \
            or MetricSpec(equipment_model=model, metric=name)
        for key, value in metric_columns(cfg).items():
            setattr(spec, key, value)
        _clean(spec, f"metrics.{name}")
        spec.save()
    for code, fm_cfg in profile.failure_modes.items():
        where = f"failure_modes.{code}"
        fm = FailureMode.objects.filter(equipment_model=model, code=code).first() \
            or FailureMode(equipment_model=model, code=code)
        fm.name = fm_cfg.name
        fm.required_skill = fm_cfg.skill or fm.required_skill or model.equipment_type
        fm.labour_hours = Decimal(str(fm_cfg.labour_hours))
        _clean(fm, where)
        fm.save()
        skus = [sku for sku, _ in fm_cfg.parts]
        parts = {p.sku: p for p in SparePart.objects.filter(sku__in=skus)}
        missing = [sku for sku in skus if sku not in parts]
        if missing:
            raise ValidationError({f"{where}.parts": f"No spare part numbered {missing}."})
        BomLine.objects.filter(failure_mode=fm).exclude(part__sku__in=skus).delete()
        for sku, qty in fm_cfg.parts:
            BomLine.objects.update_or_create(failure_mode=fm, part=parts[sku],
                                             defaults={"quantity": qty})
            parts[sku].compatible_models.add(model)
    # The rows' own timestamps move too; this one is the model's "profile changed" mark.
    EquipmentModel.objects.filter(pk=model.pk).update(profile_updated_at=timezone.now())
    model.refresh_from_db()
    return model


def _clean(obj: Any, where: str) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationError({f"{where}.{k}": v for k, v in exc.message_dict.items()}) from None


def equipment_profile_dict(*, model: EquipmentModel) -> dict[str, Any]:
    """The model's profile as a mapping (the API's and YAML's form)."""
    modes: dict[str, Any] = {}
    for fm in FailureMode.objects.filter(equipment_model=model).prefetch_related("bom__part"):
        entry: dict[str, Any] = {"name": fm.name}
        if fm.required_skill:
            entry["skill"] = fm.required_skill
        entry["labour_hours"] = float(fm.labour_hours)
        parts = {line.part.sku: line.quantity
                 for line in sorted(fm.bom.all(), key=lambda b: b.part.sku)}
        if parts:
            entry["parts"] = parts
        modes[fm.code] = entry
    head = {"kind": model.kind or "", "name": model.name, "manufacturer": model.manufacturer,
            "equipment_type": model.equipment_type,
            "contract_list_price": float(model.contract_list_price),
            "running_metric": model.running_metric, "running_above": model.running_above,
            "bearing_balls": model.bearing_balls,
            "bearing_pitch_ratio": model.bearing_pitch_ratio,
            "speed_metric": model.speed_metric}
    metrics = [spec.profile_columns()
               for spec in MetricSpec.objects.filter(equipment_model=model).order_by("pk")]
    return columns_to_profile(head, metrics, modes)


def equipment_profile_yaml(*, model: EquipmentModel) -> str:
    return f"# Equipment profile of {model.name} (Aftercare catalogue export)\n" + \
        dump_profile(equipment_profile_dict(model=model))
