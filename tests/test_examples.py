"""Every script in examples/ runs: here, in a test beside its integration, or in .ci/run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_as_the_readme_says() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "16 episodes, success rate 100%" in result.stdout
    assert "trainer update: {'episodes': 16.0" in result.stdout


def test_every_example_is_run_somewhere() -> None:
    runners = [*ROOT.joinpath("tests").rglob("test_*.py"), ROOT / ".ci" / "run"]
    text = "\n".join(path.read_text() for path in runners)
    unrun = [p.name for p in sorted(ROOT.joinpath("examples").glob("*.py")) if p.name not in text]
    assert not unrun, f"examples no test or CI step runs: {unrun}"
