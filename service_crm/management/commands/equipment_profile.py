"""``manage.py equipment_profile import FILE... | export [NAME...] [--out DIR]``: equipment
profiles (YAML, the format of ``anomaly/profiles/``) into and out of the CRM's catalogue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from service_crm.adapters.profiles import (
    equipment_profile_import,
    equipment_profile_yaml,
    profile_load_yaml,
)
from service_crm.models import EquipmentModel


class Command(BaseCommand):
    help = __doc__.splitlines()[0] if __doc__ else ""

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="create or update equipment models from profiles")
        imp.add_argument("files", nargs="+", type=Path)
        exp = sub.add_parser("export", help="write equipment models' profiles as YAML")
        exp.add_argument("names", nargs="*", help="equipment model names (default: all with "
                                                   "a profile)")
        exp.add_argument("--out", type=Path, help="folder for one <kind>.yaml per model "
                                                  "(default: standard output)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "import":
            for path in opts["files"]:
                try:
                    text = path.read_text(encoding="utf-8")
                except OSError as exc:
                    raise CommandError(f"{path}: {exc.strerror}") from None
                try:
                    model = equipment_profile_import(
                        profile=profile_load_yaml(text=text, source=str(path)))
                except ValidationError as exc:
                    detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in
                                       exc.message_dict.items())
                    raise CommandError(f"{path}: {detail}") from None
                self.stdout.write(f"imported {model.name} ({model.metrics.count()} metrics, "
                                  f"{model.failure_modes.count()} failure modes)")
            return
        qs = EquipmentModel.objects.all()
        if opts["names"]:
            qs = qs.filter(name__in=opts["names"])
            unknown = sorted(set(opts["names"]) - set(qs.values_list("name", flat=True)))
            if unknown:
                raise CommandError(f"no equipment model named {unknown}")
        else:
            qs = qs.exclude(running_metric="")
        out: Path | None = opts["out"]
        for model in qs:
            text = equipment_profile_yaml(model=model)
            if out is None:
                self.stdout.write("---\n" + text, ending="")
                continue
            out.mkdir(parents=True, exist_ok=True)
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.kind or model.name)
            (out / f"{stem}.yaml").write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {out / f'{stem}.yaml'}")
