"""``dreamgym train`` end to end from one config file, and ``dreamgym eval`` on real TextWorld games."""

from __future__ import annotations

import functools
import json
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from dreamgym_sdk import ConfigError, Task
from dreamgym_sdk.cli import app
from dreamgym_sdk.testing import OpenAIServer
from dreamgym_sdk.training.config_file import load_train_config

pytest.importorskip("trl", reason="needs the train extra")

ACTIONS = ["open door", "take key"]


def experience_answer(request: dict[str, Any]) -> str:
    """The served experience model: the door opens on 'open door'; variations when asked for tasks."""
    prompt = json.dumps(request["messages"])
    if "candidates" in prompt:
        return json.dumps({"candidates": [{"instruction": "open the red door of the house", "rationale": "",
                                           "difficulty": "harder", "feasible": True,
                                           "feasibility_check": "doors exist"}]})  # fmt: skip
    won = "## Action\nopen door" in request["messages"][-1]["content"]
    return json.dumps({"reasoning": "the door opens" if won else "nothing happens",
                       "next_state": "outside" if won else "a room with a door", "reward": float(won),
                       "done": True, "success": won})  # fmt: skip


def test_config_keys_flags_and_errors(tmp_path: Path) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text('run_dir = "r"\n[loop]\ngroup_size = 4\n[loop.budget]\niterations = 7\n')
    cfg = load_train_config(toml, {"loop.seed": "3", "algorithm": "ppo"})
    assert (cfg.run_dir, cfg.loop.group_size, cfg.loop.budget.iterations, cfg.loop.seed) == ("r", 4, 7, 3)
    result = CliRunner().invoke(app, ["train", "--config", str(toml), "--set", "loop.nope=1"])
    assert result.exit_code == 2 and "loop.nope" in result.output
    result = CliRunner().invoke(app, ["train", "--config", str(toml), "--iterations", "2", "--print-config"])
    assert result.exit_code == 0 and tomllib.loads(result.stdout)["loop"]["budget"]["iterations"] == 2


def test_a_missing_model_fails_before_training(tmp_path: Path) -> None:
    args = ["train", "--run-dir", str(tmp_path / "run"), "--experience-model", "hf:no/such-model"]
    result = CliRunner().invoke(app, args, env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 2 and "no/such-model" in result.output and "Traceback" not in result.output
    args = ["train", "--experience-model", "openai/x", "--policy", "no-policy-here"]
    result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code == 2 and "no such file or directory 'no-policy-here'" in result.output
    assert not (tmp_path / "run").exists()


def test_loop_group_size_is_the_one_group_size(tmp_path: Path) -> None:
    cfg = load_train_config(None, {"loop.group_size": "8"})
    assert cfg.loop.group_size == cfg.grpo.group_size == cfg.curriculum.group_size == 8
    with pytest.raises(ConfigError, match=r"grpo.group_size=4 differs from loop.group_size=8"):
        load_train_config(None, {"loop.group_size": "8", "grpo.group_size": "4"})


async def test_train_runs_two_iterations_from_a_config_file(tmp_path: Path) -> None:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    policy_dir = build_tiny_model(tmp_path / "policy", [*ACTIONS, "a room with a door", "outside"] * 5,
                                  hidden=32, layers=1, heads=2)  # fmt: skip
    tasks = tmp_path / "tasks.jsonl"
    start = "a room with a door"
    seeds = [Task(id=f"t{i}", instruction=f"leave room number {i}", initial_state=start) for i in range(2)]
    tasks.write_text("".join(t.model_dump_json() + "\n" for t in seeds))
    async with OpenAIServer(responder=experience_answer) as server:
        args = [
            "train", "--run-dir", str(tmp_path / "run"), "--tasks", str(tasks),
            "--experience-model", "openai/exp", "--api-base", server.base_url, "--policy", str(policy_dir),
            "--iterations", "2", "--set", "loop.group_size=4", "--set", "loop.tasks_per_iteration=2",
            "--set", "loop.progress=false", "--set", "grpo.group_size=4", "--set", "curriculum.group_size=4",
            "--set", f"policy.sampling.actions={json.dumps(ACTIONS)}",
            "--set", "policy.sampling.constrain_to_admissible=true",
            "--set", "experience.reasoning.max_retries=0",
        ]  # fmt: skip
        result = await anyio.to_thread.run_sync(functools.partial(CliRunner().invoke, app, args))
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    assert [m["iteration"] for m in metrics] == [1.0, 2.0]
    assert all(m["episodes"] == 8 for m in metrics)
    assert (tmp_path / "run" / "checkpoint").is_dir()
    assert 0 < metrics[0]["success_rate"] < 1  # the random tiny policy sometimes opens the door
    assert sum(m["train/optimizer_steps"] for m in metrics) >= 1  # GRPO trained on groups with variance
