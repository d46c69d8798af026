"""The structure the imports must keep: the kernel (``aftercare/``) imports no other floor (the
entry points live in ``aftercare_cli/``), the detection runtime (``anomaly/``) depends on neither
the simulator nor its own evaluation nor Django, and ingest on none of them. Read from the
source with ``ast``, so a lazy import inside a function counts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    # The kernel (config, contract, events, MQTT, store, broker files): the ground floor.
    "aftercare": {"aftercare_cli", "ingest", "anomaly", "evaluation", "simulators",
                  "service_crm", "web", "django", "tests"},
    "anomaly": {"simulators", "evaluation", "django", "service_crm", "web", "aftercare_cli"},
    "ingest": {"simulators", "evaluation", "anomaly", "django", "service_crm", "web",
               "aftercare_cli"},
    "evaluation": {"django", "service_crm", "web"},
}


def imported(path: Path) -> set[str]:
    """Top-level package names a module imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_its_floor(package: str) -> None:
    bad = {str(p.relative_to(ROOT)): sorted(imported(p) & FORBIDDEN[package])
           for p in sorted((ROOT / package).rglob("*.py"))}
    assert {k: v for k, v in bad.items() if v} == {}


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from simulators.fleet import X\n    import django.db\n")
    assert imported(f) == {"simulators", "django"}
