"""``dreamgym train`` fails, with one line and a non-zero exit, when it would train on nothing."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from dreamgym_sdk import Task
from dreamgym_sdk.cli import app
from dreamgym_sdk.testing import OpenAIServer

pytest.importorskip("trl", reason="needs the train extra")

ACTIONS = ["open door", "take key"]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    corpus = [*ACTIONS, "a room with a door", "outside"] * 5
    return build_tiny_model(tmp_path_factory.mktemp("idle") / "policy", corpus, hidden=32, layers=1, heads=2)


def nothing_happens(request: dict[str, Any]) -> str:
    """Every action ends the episode with reward 0: every GRPO group has equal rewards."""
    return json.dumps({"reasoning": "nothing happens", "next_state": "a room with a door", "reward": 0.0,
                       "done": True, "success": False})  # fmt: skip


def gibberish(request: dict[str, Any]) -> str:
    return "the room, the room, the room"


async def train(tmp_path: Path, policy_dir: Path, responder: Any, *more: str) -> Any:
    await anyio.Path(tmp_path).mkdir(exist_ok=True)
    tasks = tmp_path / "tasks.jsonl"
    task = Task(id="t", instruction="leave the room", initial_state="a room with a door")
    tasks.write_text(task.model_dump_json() + "\n")
    async with OpenAIServer(responder=responder) as server:
        args = [
            "train", "--run-dir", str(tmp_path / "run"), "--tasks", str(tasks),
            "--experience-model", "openai/exp", "--api-base", server.base_url, "--policy", str(policy_dir),
            "--iterations", "1", "--set", "loop.group_size=2", "--set", "loop.tasks_per_iteration=1",
            "--set", "loop.progress=false", "--set", "generate_tasks=false",
            "--set", f"policy.sampling.actions={json.dumps(ACTIONS)}",
            "--set", "policy.sampling.constrain_to_admissible=true",
            "--set", "experience.reasoning.max_retries=0", *more,
        ]  # fmt: skip
        return await anyio.to_thread.run_sync(functools.partial(CliRunner().invoke, app, args))


async def test_an_iteration_without_a_usable_episode_fails_in_one_line(
    tmp_path: Path, policy_dir: Path
) -> None:
    result = await train(tmp_path, policy_dir, gibberish)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: NothingToTrainError: iteration 1 played no usable episode (2 failed): nothing to train on "
        "(see the warnings logged for the failed episodes; LoopConfig(allow_idle_iterations=True) goes on "
        "regardless)"
    ]
    assert "Traceback" not in result.output


async def test_a_run_without_an_optimizer_step_fails_unless_allowed(tmp_path: Path, policy_dir: Path) -> None:
    result = await train(tmp_path, policy_dir, nothing_happens)
    assert result.exit_code == 1, result.output
    assert "error: NothingToTrainError: 1 iteration(s) took no optimizer step" in result.output
    assert "Traceback" not in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert (metrics["episodes"], metrics["train/optimizer_steps"]) == (2.0, 0.0)

    allowed = await train(tmp_path / "allowed", policy_dir, nothing_happens,
                          "--set", "loop.allow_idle_iterations=true")  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
