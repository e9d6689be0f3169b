"""examples/gymnasium_text_env.py runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "gymnasium_text_env.py"


def test_example_runs() -> None:
    pytest.importorskip("gymnasium")
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rollouts: [('real', 2, 1.0)" in result.stdout
