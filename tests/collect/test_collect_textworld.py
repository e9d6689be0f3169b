"""Collecting real TextWorld transitions into a JSON-lines file."""

from __future__ import annotations

from pathlib import Path

from dreamgym_sdk import Source
from dreamgym_sdk.collect import ExpertPolicy, JsonlSink, MixturePolicy, RandomAdmissiblePolicy, collect
from dreamgym_sdk.integrations.textworld import AbstractState, GameInfo, TextWorldEnv


async def test_expert_collection_wins_every_game(tw_games: list[GameInfo], tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "real.jsonl")
    tasks = [g.to_task() for g in tw_games]
    result = await collect(
        lambda _: TextWorldEnv(max_steps=20), ExpertPolicy(), tasks, sink, episodes_per_task=2
    )
    assert result.summary.success_rate == 1.0 and result.summary.episodes == 6
    for episode, game in zip(result.episodes, [g for g in tw_games for _ in range(2)], strict=True):
        assert episode.task.id == game.id and episode.total_reward == game.max_score
        assert episode.initial_state == episode.task.initial_state
        assert AbstractState.parse(episode.transitions[-1].next_state).score == game.max_score
    stored = sink.read()
    assert sorted(t.id for t in stored) == sorted(t.id for e in result.episodes for t in e.transitions)
    assert {t.id: t for t in stored} == {t.id: t for e in result.episodes for t in e.transitions}
    assert all(t.source is Source.REAL and t.environment == "textworld" for t in stored)


async def test_seeds_reproduce_a_textworld_collection(tw_games: list[GameInfo], tmp_path: Path) -> None:
    policy = MixturePolicy([(ExpertPolicy(), 1.0), (RandomAdmissiblePolicy(0.5, seed=7), 1.0)], seed=1)
    tasks = [g.to_task() for g in tw_games]

    async def run(name: str, concurrency: int) -> list[tuple[str, str, float, str]]:
        sink = JsonlSink(tmp_path / name)
        result = await collect(
            lambda _: TextWorldEnv(max_steps=8), policy, tasks, sink, episodes_per_task=2, seed=3,
            max_concurrency=concurrency,
        )  # fmt: skip
        assert len(sink.read()) == result.summary.transitions
        return [(e.task.id, t.action, t.reward, t.next_state) for e in result.episodes for t in e.transitions]

    assert await run("a.jsonl", 1) == await run("b.jsonl", 4)
