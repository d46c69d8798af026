"""`bash scripts/dev.sh demo --help` answers at once, installing nothing (issue 15, item 9: it
used to create the virtual environment and install every dependency first, 81 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_help_prints_without_creating_the_venv(tmp_path: Path) -> None:
    venv = tmp_path / "no-venv-yet"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "dev.sh"), "demo", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
        # The base interpreter, not the venv: the help needs no installed package.
        env={"PATH": f"{Path(sys.base_prefix) / 'bin'}:/usr/bin:/bin",
             "AFTERCARE_VENV": str(venv), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: aftercare demo")
    assert "--fleet-size" in result.stdout
    assert not venv.exists()
    assert "installing" not in result.stdout + result.stderr
