"""Reward spread over identical replays: the same task and the same actions, played in N sessions.

A synthetic environment whose rewards change when nothing else does is "environment luck" in every RL
advantage. This script replays stored real episodes (their task, initial state and actions) in a
DreamEnv ``--sessions`` times each, sampling at ``--temperature``, with and without the experience
model's deterministic mode (``ReasoningConfig.deterministic``), and reports per mode the standard
deviation of each step's reward across sessions (mean and max over steps) and the share of replays
identical to the first.

- local path: a distilled experience model directory (``--model DIR``, e.g. the demo's
  ``experience-model``), on the ``hf:`` backend, grounded on the transitions stored with it;
- OpenAI-compatible path (``--api-base URL --served-name NAME``, e.g. a vLLM server): the same directory's
  prompt settings, answered by the server.

    python benchmarks/bench_reward_spread.py --model runs/demo/experience-model

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk import DreamEnv, Task, Transition
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience import ExperienceModel


def _scripts(stored: list[Transition], episodes: int, max_steps: int) -> list[tuple[Task, list[str]]]:
    """The first ``episodes`` stored episodes as (task with its initial state, actions)."""
    by_episode: dict[str, list[Transition]] = defaultdict(list)
    for t in stored:
        by_episode[t.episode_id].append(t)
    scripts: list[tuple[Task, list[str]]] = []
    for steps in list(by_episode.values())[:episodes]:
        steps.sort(key=lambda t: t.step)
        task = Task(id=steps[0].task_id, instruction="", environment=steps[0].environment,
                    initial_state=steps[0].state)  # fmt: skip
        scripts.append((task, [t.action for t in steps[:max_steps]]))
    return scripts


async def _replay(model: ExperienceModel, task: Task, actions: list[str]) -> list[tuple[str, float, bool]]:
    played: list[tuple[str, float, bool]] = []
    async with DreamEnv(model, max_steps=len(actions)) as env:
        await env.reset(task=task)  # unseeded: what a session that does not manage seeds gets
        for action in actions:
            try:
                step = await env.step(action)
            except ModelOutputError:
                played.append(("<unusable>", 0.0, True))
                break
            played.append((step.observation, step.reward, step.terminated))
            if step.done:
                break
    return played


async def _measure(
    model: ExperienceModel, scripts: list[tuple[Task, list[str]]], sessions: int
) -> dict[str, Any]:
    spreads: list[float] = []
    identical = 0
    started = time.perf_counter()
    for task, actions in scripts:
        replays = [await _replay(model, task, actions) for _ in range(sessions)]
        identical += sum(r == replays[0] for r in replays[1:])
        for step in range(len(actions)):
            rewards = [r[step][1] if step < len(r) else 0.0 for r in replays]  # an ended episode earns 0
            spreads.append(statistics.pstdev(rewards))
    return {
        "reward_std_mean": round(statistics.fmean(spreads), 4) if spreads else 0.0,
        "reward_std_max": round(max(spreads, default=0.0), 4),
        "identical_replays": f"{identical}/{len(scripts) * (sessions - 1)}",
        "seconds": round(time.perf_counter() - started, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="A distilled experience model directory.")
    parser.add_argument("--api-base", help="An OpenAI-compatible server answering for that model.")
    parser.add_argument("--served-name", default="experience-model", help="The model's name on that server.")
    parser.add_argument("--episodes", type=int, default=5, help="Stored episodes replayed.")
    parser.add_argument("--sessions", type=int, default=5, help="Replays of each episode.")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()

    from dreamgym_sdk.distill import open_experience_model, read_replay
    from dreamgym_sdk.experience import ReasoningExperienceModel
    from dreamgym_sdk.providers import get_provider

    scripts = _scripts(read_replay(args.model), args.episodes, args.max_steps)
    report: dict[str, Any] = {
        "benchmark": "reward_spread",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {"episodes": len(scripts), "sessions": args.sessions, "temperature": args.temperature},
    }
    for deterministic in (False, True):
        mode = "deterministic" if deterministic else "sampled"
        async with open_experience_model(
            args.model,
            temperature=args.temperature,
            deterministic=deterministic,
            max_tokens=320,
            max_retries=1,
        ) as local:
            report[f"local_{mode}"] = await _measure(local, scripts, args.sessions)
            if args.api_base:
                async with get_provider(f"openai/{args.served_name}", api_base=args.api_base) as provider:
                    served = ReasoningExperienceModel(
                        provider, retriever=local.retriever, config=local.config
                    )
                    report[f"openai_compatible_{mode}"] = await _measure(served, scripts, args.sessions)
    from dreamgym_sdk._versions import package_versions

    print(json.dumps(report | {"versions": package_versions()}, indent=2))


if __name__ == "__main__":
    anyio.run(main)
