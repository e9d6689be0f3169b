"""``dreamgym rescore``: stored episodes get rewards from another source, written as a new version."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from dreamgym_sdk.cli import app
from dreamgym_sdk.collect import read_jsonl
from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig
from dreamgym_sdk.types import Source, Transition

RULE = """
from dreamgym_sdk.experience import RewardVerdict

def won_when_said(request, output):
    won = "you win" in output.next_state.lower()
    return RewardVerdict(reward=float(won), done=won, success=won)
"""


def _episode() -> list[Transition]:
    # a simulator that paid for the wrong step and missed the win
    steps = [("look", "A room.", 1.0, False), ("open door", "Outside. You win!", 0.0, False)]
    return [
        Transition(
            task_id="leave",
            episode_id="e1",
            step=i,
            state="A room.",
            action=action,
            next_state=after,
            reward=reward,
            terminated=done,
            truncated=i == 1,
            source=Source.SYNTHETIC,
        )
        for i, (action, after, reward, done) in enumerate(steps)
    ]


@pytest.fixture
def rule_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_rewards.py").write_text(RULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_rewards:won_when_said"


def test_rescoring_a_jsonl_file_writes_a_new_one(tmp_path: Path, rule_module: str) -> None:
    stored = tmp_path / "episodes.jsonl"
    stored.write_text("".join(t.model_dump_json() + "\n" for t in _episode()))
    before = stored.read_text()
    result = CliRunner().invoke(
        app, ["rescore", str(stored), "-o", str(tmp_path / "new.jsonl"), "--rule", rule_module]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rewards_changed"], report["endings_changed"], report["max_abs_change"]) == (2, 1, 1.0)
    rescored = read_jsonl(tmp_path / "new.jsonl")
    assert [(t.reward, t.terminated, t.truncated, t.success) for t in rescored] == [
        (0.0, False, False, False),
        (1.0, True, False, True),
    ]
    assert {t.provenance.reward_source for t in rescored} == {f"rule:{rule_module}"}
    assert stored.read_text() == before  # the old version is intact
    again = CliRunner().invoke(
        app, ["rescore", str(stored), "-o", str(tmp_path / "new.jsonl"), "--rule", rule_module]
    )
    assert again.exit_code == 2 and "never over one" in again.output


def test_rescoring_a_buffer_writes_a_new_buffer(tmp_path: Path, rule_module: str) -> None:
    old, new = tmp_path / "buffer", tmp_path / "buffer-rescored"

    async def fill() -> None:
        async with LanceDBReplayBuffer(ReplayConfig(uri=str(old), embedder="hashing")) as buffer:
            await buffer.add(_episode())

    async def rewards(uri: Path) -> list[float]:
        config = ReplayConfig(uri=str(uri), embedder="hashing", read_only=True)
        async with LanceDBReplayBuffer(config) as buffer:
            return [t.reward for t in sorted(await buffer.sample(10), key=lambda t: t.step)]

    anyio.run(fill)
    result = CliRunner().invoke(app, ["rescore", str(old), "-o", str(new), "--rule", rule_module])
    assert result.exit_code == 0, result.output
    assert anyio.run(rewards, new) == [0.0, 1.0]
    assert anyio.run(rewards, old) == [1.0, 0.0]  # the old version is intact


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "nowhere:fn", "--judge", "openai/x"], "exactly one reward source"),
        (["--rule", "no_such_module_here:fn"], "no_such_module_here"),
        (["--rule", "missing_colon"], "module:function"),
    ],
)
def test_rescore_mistakes_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    stored = tmp_path / "episodes.jsonl"
    stored.write_text("".join(t.model_dump_json() + "\n" for t in _episode()))
    result = CliRunner().invoke(app, ["rescore", str(stored), "-o", str(tmp_path / "o.jsonl"), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_a_missing_input_is_refused(tmp_path: Path, rule_module: str) -> None:
    missing = str(tmp_path / "nothing.jsonl")
    result = CliRunner().invoke(
        app, ["rescore", missing, "-o", str(tmp_path / "o.jsonl"), "--rule", rule_module]
    )
    assert result.exit_code == 2 and "no such file or buffer" in result.output
    assert not (tmp_path / "o.jsonl").exists()
