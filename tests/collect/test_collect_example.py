"""examples/textworld_collect.py runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dreamgym_sdk.collect import read_jsonl
from dreamgym_sdk.integrations.textworld import GameInfo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "textworld_collect.py"


def test_the_example_collects(tw_games: list[GameInfo], tmp_path: Path) -> None:
    (tmp_path / "games").symlink_to(tw_games[0].path.parent)  # reuse the session's games: one left to make
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "12 episodes" in result.stdout
    transitions = read_jsonl(tmp_path / "real.jsonl")
    assert transitions and all(t.source == "real" for t in transitions)
