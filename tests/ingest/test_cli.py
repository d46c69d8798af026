"""`aftercare ingest` refuses bad numbers with a usage error that names the flag (exit 2),
instead of a traceback from the worker's constructor."""

from __future__ import annotations

import pytest

from ingest.worker import main


@pytest.mark.parametrize(("flag", "value", "says"), [
    ("--batch-size", "0", "must be at least 1, got 0"),
    ("--batch-ms", "-5", "must be at least 1, got -5"),
    ("--receive-maximum", "70000", "must be from 1 to 65535, got 70000"),
    ("--copy-connections", "0", "must be from 1 to 16, got 0"),
    ("--copy-split-rows", "many", "not an integer: 'many'"),
])
def test_bad_numbers_are_usage_errors(flag: str, value: str, says: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: {says}" in capsys.readouterr().err
