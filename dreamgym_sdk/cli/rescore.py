"""``dreamgym rescore``: recompute the rewards of stored episodes with another reward source.

Nothing is re-run: the reward source reads what each transition recorded. The result is a new version
(a new JSONL file, or a new LanceDB buffer built with the input buffer's embedder); the input is never
written::

    dreamgym rescore episodes.jsonl -o rescored.jsonl --rule mypkg.rewards:won_when_said
    dreamgym rescore runs/buffer -o runs/buffer-judged --judge openai/gpt-4o-mini --rubric "..."
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dreamgym_sdk.cli._options import run_async

if TYPE_CHECKING:
    from dreamgym_sdk.experience.rewards import RewardSource
    from dreamgym_sdk.replay.base import Embedder
    from dreamgym_sdk.types import Task, Transition

__all__ = ["rescore"]

JSONL = ".jsonl"


def rescore(
    source: Annotated[str, typer.Argument(help="A .jsonl file of transitions, or a LanceDB buffer.")],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="New .jsonl file, or new buffer (input a buffer); must not exist."
        ),
    ],
    rule: Annotated[
        str | None,
        typer.Option(help="module:function(request, output) -> RewardVerdict deciding the reward."),
    ] = None,
    judge: Annotated[
        str | None, typer.Option(help="Model string of an LLM judge deciding the reward.")
    ] = None,
    rubric: Annotated[str | None, typer.Option(help="The judge's rubric (default: success earns 1).")] = None,
    api_base: Annotated[
        str | None, typer.Option(help="Base URL of the judge's OpenAI-compatible server.")
    ] = None,
    tasks: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="JSONL of tasks, for the instructions a judge reads."),
    ] = None,
) -> None:
    """Recompute rewards, endings and success of stored transitions with a rule or an LLM judge; writes a
    new version and prints what changed."""
    if (rule is None) == (judge is None):
        raise typer.BadParameter("give exactly one reward source: --rule module:function or --judge MODEL")
    into_file = output.endswith(JSONL)
    from_file = source.endswith(JSONL)
    if not Path(source).exists():
        raise typer.BadParameter(f"no such file or buffer: {source!r}", param_hint="SOURCE")
    if Path(output).exists():
        raise typer.BadParameter(f"{output!r} exists: rescoring writes a new version, never over one")
    if not into_file and from_file:
        raise typer.BadParameter("a JSONL input is rescored into a JSONL file (name the output .jsonl)")
    known = _read_tasks(tasks) if tasks is not None else {}
    report = run_async(lambda: _rescore(source, output, _source(rule, judge, rubric, api_base), known))
    typer.echo(json.dumps(report, indent=2))


def _source(rule: str | None, judge: str | None, rubric: str | None, api_base: str | None) -> RewardSource:
    from dreamgym_sdk.experience.rewards import JudgeReward, RuleReward

    if rule is not None:
        module_name, _, function = rule.partition(":")
        if not function:
            raise typer.BadParameter(f"--rule {rule!r}: write it as module:function")
        try:
            fn = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise typer.BadParameter(f"--rule {rule!r}: {exc}") from None
        return RuleReward(fn, name=f"rule:{rule}")
    from dreamgym_sdk.providers import check_model_string, get_provider

    assert judge is not None
    check_model_string(judge)
    provider = get_provider(judge, api_base=api_base) if api_base else get_provider(judge)
    if rubric is None:
        return JudgeReward(provider, name=f"judge:{judge}")
    return JudgeReward(provider, rubric=rubric, name=f"judge:{judge}")


def _read_tasks(path: Path) -> dict[str, Task]:
    from dreamgym_sdk.types import Task

    lines = path.read_text(encoding="utf-8").splitlines()
    return {task.id: task for task in (Task.model_validate_json(line) for line in lines if line.strip())}


async def _rescore(
    source: str, output: str, reward: RewardSource, tasks: dict[str, Task]
) -> dict[str, object]:
    from dreamgym_sdk.experience.rewards import JudgeReward, rescore

    try:
        rescored, report = await rescore(await _read(source), reward, tasks=tasks)
    finally:
        if isinstance(reward, JudgeReward):
            await reward.provider.aclose()
    if output.endswith(JSONL):
        _write_jsonl(Path(output), rescored)
    else:
        await _write_buffer(source, output, rescored)
    result: dict[str, object] = {"source": source, "output": output, "reward_source": reward.name}
    result |= dataclasses.asdict(report)
    if isinstance(reward, JudgeReward):
        result["judge_calls"] = reward.calls
        result["judge_usage"] = reward.usage.model_dump()
    return result


async def _read(source: str) -> list[Transition]:
    from dreamgym_sdk.collect import read_jsonl
    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

    if source.endswith(JSONL):
        return read_jsonl(source)
    transitions: list[Transition] = []
    async with LanceDBReplayBuffer(
        ReplayConfig(uri=source, read_only=True), embedder=await _embedder(source)
    ) as buffer:
        async for batch in buffer.scan():
            transitions.extend(batch)
    return transitions


async def _embedder(uri: str) -> Embedder:
    from dreamgym_sdk.embeddings import embedder_for_name
    from dreamgym_sdk.replay import ReplayConfig, stored_embedder

    stored = await stored_embedder(ReplayConfig(uri=uri, read_only=True))
    if stored is None:
        raise typer.BadParameter(f"{uri!r} holds no replay table", param_hint="SOURCE")
    return embedder_for_name(*stored)


def _write_jsonl(path: Path, transitions: list[Transition]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(t.model_dump_json() + "\n" for t in transitions), encoding="utf-8")
    partial.replace(path)


async def _write_buffer(source: str, output: str, transitions: list[Transition]) -> None:
    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

    embedder = await _embedder(source)
    async with LanceDBReplayBuffer(ReplayConfig(uri=output), embedder=embedder) as buffer:
        for start in range(0, len(transitions), 2000):
            await buffer.add(transitions[start : start + 2000])
