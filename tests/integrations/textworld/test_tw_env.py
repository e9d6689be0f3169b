"""TextWorldEnv: the Env protocol, rewards, termination, truncation, observations and info."""

from __future__ import annotations

import sys
from functools import partial

import anyio
import pytest

from dreamgym_sdk import EnvClosedError, EpisodeFinishedError, MissingExtraError, ResetNeededError, Task
from dreamgym_sdk.integrations.textworld import (
    AbstractState,
    GameInfo,
    ObservationMode,
    TextWorldEnv,
    TextWorldStateMapper,
)
from dreamgym_sdk.integrations.textworld import env as env_module
from dreamgym_sdk.testing import check_env


async def test_passes_check_env(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[0]
    await check_env(TextWorldEnv(game, max_steps=4), actions=("look",), fresh_env=TextWorldEnv(game))


async def test_passes_check_env_with_a_task_and_raw_observations(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[1]
    await check_env(
        TextWorldEnv(max_steps=20, observation="raw"), task=game.to_task(), actions=game.walkthrough, seed=3
    )


async def test_walkthrough_wins_with_the_max_score(cooking_games: list[GameInfo]) -> None:
    for game in cooking_games:
        async with TextWorldEnv(game, max_steps=50) as env:
            obs, info = await env.reset()
            assert info["walkthrough"] == list(game.walkthrough)
            rewards: list[float] = []
            for i, action in enumerate(info["walkthrough"]):
                obs, reward, terminated, truncated, info = await env.step(action)
                rewards.append(reward)
                assert terminated == (i == len(game.walkthrough) - 1) and not truncated
            assert info["success"] and info["won"] and not info["lost"]
            assert sum(rewards) == info["score"] == info["max_score"] == game.max_score
            assert AbstractState.parse(obs).score == game.max_score
            with pytest.raises(EpisodeFinishedError):
                await env.step("look")


async def test_rewards_are_score_deltas(cooking_games: list[GameInfo]) -> None:
    async with TextWorldEnv(cooking_games[0]) as env:
        _, info = await env.reset()
        previous = info["score"]
        for action in info["policy_commands"]:
            result = await env.step(action)
            assert result.reward == result.info["score"] - previous
            previous = result.info["score"]
        assert previous == cooking_games[0].max_score


async def test_losing_terminates_without_success(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[0]
    take = next(a for a in game.walkthrough if a.startswith("take "))
    ingredient = take.removeprefix("take ").split(" from ")[0]
    async with TextWorldEnv(game) as env:
        await env.reset()
        await env.step(take)
        result = await env.step(f"eat {ingredient}")  # the recipe needs it: the game is lost
        assert result.terminated and not result.truncated
        assert result.info["lost"] and not result.info["success"]


async def test_truncates_at_max_steps(cooking_games: list[GameInfo]) -> None:
    async with TextWorldEnv(cooking_games[0], max_steps=3) as env:
        await env.reset()
        flags = [(r.terminated, r.truncated) for r in [await env.step("look") for _ in range(3)]]
        assert flags == [(False, False), (False, False), (False, True)]
        with pytest.raises(EpisodeFinishedError):
            await env.step("look")
        obs, _ = await env.reset()  # a new episode starts fresh
        assert not (await env.step("look")).truncated
        assert obs


async def test_protocol_errors(cooking_games: list[GameInfo]) -> None:
    env = TextWorldEnv(cooking_games[0])
    with pytest.raises(ResetNeededError):
        await env.step("look")
    with pytest.raises(ValueError, match="objective"):
        await env.reset(task="cook something")
    with pytest.raises(ValueError, match="no game"):
        await TextWorldEnv().reset()
    with pytest.raises(ValueError, match="max_steps"):
        TextWorldEnv(cooking_games[0], max_steps=0)
    await env.close()
    await env.close()
    with pytest.raises(EnvClosedError):
        await env.reset()


async def test_missing_textworld_names_the_extra(
    cooking_games: list[GameInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "textworld", None)
    async with TextWorldEnv(cooking_games[0]) as env:
        with pytest.raises(MissingExtraError, match=r"dreamgym-sdk\[textworld\]"):
            await env.reset()


async def test_info_and_task(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[2]
    async with TextWorldEnv(game, extra_infos=("inventory",)) as env:
        obs, info = await env.reset(seed=7)
        task = info["task"]
        assert isinstance(task, Task)
        assert task.id == game.id and task.instruction == game.objective == info["objective"]
        assert task.environment == "textworld" and task.initial_state == obs
        assert task.metadata["game_path"] == str(game.path) == info["game_path"]
        assert info["seed"] == 7 and info["score"] == 0 and info["max_score"] == game.max_score
        assert not info["won"] and not info["lost"] and not info["success"]
        assert "inventory" in info["admissible_commands"]
        assert info["policy_commands"][-1] == "eat meal"
        assert "at(P, kitchen)" in info["facts"]
        assert info["inventory"].startswith("You are carrying")
        assert isinstance(info["abstract_state"], AbstractState)
        assert info["abstract_state"].render() == obs


async def test_observation_modes(cooking_games: list[GameInfo]) -> None:
    game = cooking_games[0]
    async with TextWorldEnv(game, observation=ObservationMode.RAW) as raw_env:
        raw, raw_info = await raw_env.reset()
        assert raw.startswith("You are hungry!") and "-= Kitchen =-" in raw
        assert "$$" not in raw and ">" not in raw  # no title banner, no prompt line
        step = await raw_env.step("inventory")
        assert step.observation == "You are carrying nothing."
    async with TextWorldEnv(game) as env:
        obs, info = await env.reset()
        state = AbstractState.parse(obs)
        assert state.location == "kitchen" and state.inventory == () and state.score == 0
        assert state == raw_info["abstract_state"] == info["abstract_state"]
        step = await env.step("inventory")
        assert AbstractState.parse(step.observation).feedback == "You are carrying nothing."


async def test_custom_mapper(custom_game: GameInfo) -> None:
    mapper = TextWorldStateMapper(show_destinations=True, include_feedback=False)
    async with TextWorldEnv(custom_game, mapper=mapper) as env:
        obs, _ = await env.reset()
        state = AbstractState.parse(obs)
        assert state.exits and all(e.destination for e in state.exits)
        result = await env.step(custom_game.walkthrough[0])
        assert "feedback:" not in result.observation


async def test_one_env_plays_the_game_of_each_task(cooking_games: list[GameInfo]) -> None:
    async with TextWorldEnv(max_steps=10) as env:
        for game in [*cooking_games, cooking_games[0]]:
            _, info = await env.reset(task=game.to_task())
            assert info["task"].id == game.id and info["walkthrough"] == list(game.walkthrough)
            assert env.game == game


async def test_concurrent_envs_do_not_interfere(cooking_games: list[GameInfo]) -> None:
    # TextWorld is not thread-safe: loading games from several threads at once used to crash.
    results: dict[int, float] = {}

    async def play(index: int, game: GameInfo) -> None:
        async with TextWorldEnv(game) as env:
            _, info = await env.reset()
            total = 0.0
            for action in info["walkthrough"]:
                total += (await env.step(action)).reward
            results[index] = total

    async with anyio.create_task_group() as tg:
        for index, game in enumerate([*cooking_games, *cooking_games]):
            tg.start_soon(play, index, game)
    assert results == {i: 3.0 for i in range(6)}


async def test_a_cancelled_reset_needs_a_new_reset(cooking_games: list[GameInfo]) -> None:
    async with TextWorldEnv(cooking_games[0]) as env:
        await env.reset()
        async with anyio.create_task_group() as tg:
            with env_module._ENGINE_LOCK:  # hold the engine: the reset waits in its thread
                tg.start_soon(partial(env.reset, task=cooking_games[1].to_task()))
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
        with pytest.raises(ResetNeededError):  # neither the old episode nor the new one is playable
            await env.step("look")
        _, info = await env.reset()
        assert info["task"].id == cooking_games[0].id and not (await env.step("look")).done


async def test_a_cancelled_step_happens_whole_or_not_at_all(cooking_games: list[GameInfo]) -> None:
    async with TextWorldEnv(cooking_games[0]) as env:
        _, info = await env.reset()
        async with anyio.create_task_group() as tg:
            with env_module._ENGINE_LOCK:  # hold the engine: the step waits in its thread
                tg.start_soon(env.step, info["policy_commands"][0])
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
        result = await env.step("inventory")  # the cancelled step still happened, and was counted
        assert result.info["moves"] == 2 and result.info["score"] == 1 and result.reward == 0
