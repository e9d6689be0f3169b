"""examples/serve_client.py runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serve_client.py"


def test_the_example_runs_episodes_through_the_server() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "server: 6 sessions, 12 steps" in result.stdout
    assert result.stdout.count("success=True") == 6
