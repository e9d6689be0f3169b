"""examples/miniwob_collect.py runs as written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "miniwob_collect.py"


def test_example_runs() -> None:
    pytest.importorskip("miniwob")
    if shutil.which("chromedriver") is None:
        pytest.skip("needs chromium and chromedriver: run scripts/install-miniwob.sh")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "click-checkboxes   success=True" in result.stdout
