"""The gymnasium integration: a DreamEnv passes gymnasium's own check_env, gymnasium text envs pass ours."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from dreamgym_sdk import (
    DreamEnv,
    EnvClosedError,
    EpisodeFinishedError,
    ExperienceRequest,
    RolloutRunner,
    Task,
)
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedPolicy, check_env

gymnasium = pytest.importorskip("gymnasium")

from gymnasium import spaces  # noqa: E402
from gymnasium.utils.env_checker import check_env as gymnasium_check_env  # noqa: E402

from dreamgym_sdk.integrations.gymnasium import EnvToGymnasium, GymnasiumToEnv  # noqa: E402

KITCHEN = "fridge: closed; apple: in hand"


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    if req.action == "open fridge":
        return {
            "reasoning": "it opens",
            "next_state": "fridge: open; apple: in hand",
            "reward": 0.0,
            "done": False,
        }
    if req.action == "put apple in fridge" and "fridge: open" in req.state:
        return {
            "reasoning": "it fits",
            "next_state": "apple in fridge",
            "reward": 1.0,
            "done": True,
            "success": True,
        }
    return {"reasoning": "nothing happens", "next_state": req.state, "reward": 0.0, "done": False}


def make_dream_env(max_steps: int = 5) -> DreamEnv:
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state=KITCHEN), max_steps=max_steps)


@pytest.fixture
def kitchen_id() -> Iterator[str]:
    env_id = "dreamgym-test/Kitchen-v0"
    gymnasium.register(
        env_id,
        entry_point="dreamgym_sdk.integrations.gymnasium:EnvToGymnasium",
        kwargs={"env": make_dream_env, "task": "store the apple"},
    )
    yield env_id
    del gymnasium.registry[env_id]


def test_dream_env_passes_gymnasiums_check_env_without_warnings(kitchen_id: str) -> None:
    env = gymnasium.make(kitchen_id, render_mode="ansi")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gymnasium_check_env(env.unwrapped)
    finally:
        env.close()


def test_episode_through_the_gymnasium_facade() -> None:
    env = EnvToGymnasium(make_dream_env(), task="store the apple", render_mode="ansi")
    obs, info = env.reset(seed=0)
    assert obs == KITCHEN and env.observation_space.contains(obs)
    assert info["source"] == "synthetic" and "episode_id" not in info
    assert env.render() == KITCHEN
    obs, reward, terminated, truncated, info = env.step("open fridge")
    assert (obs, reward, terminated, truncated) == ("fridge: open; apple: in hand", 0.0, False, False)
    obs, reward, terminated, truncated, info = env.step("put apple in fridge")
    assert (reward, terminated, truncated, info["success"], info["reasoning"]) == (
        1.0,
        True,
        False,
        True,
        "it fits",
    )
    assert env.last_info["episode_id"] and env.last_info["transition_id"]
    with pytest.raises(EpisodeFinishedError):
        env.step("open fridge")
    env.close()
    env.close()
    with pytest.raises(EnvClosedError):
        env.reset()


def test_truncation_and_keeping_volatile_info() -> None:
    env = EnvToGymnasium(make_dream_env(max_steps=2), task="store the apple", drop_info_keys=())
    try:
        env.reset(seed=1)
        assert env.step("wait")[3] is False
        _, _, terminated, truncated, info = env.step("wait")
        assert (terminated, truncated) == (False, True)
        assert info["episode_id"] == env.last_info["episode_id"]
    finally:
        env.close()


def test_observations_are_made_members_of_the_space() -> None:
    def noisy(req: ExperienceRequest) -> dict[str, Any]:
        return {"reasoning": "", "next_state": "bell\x07 🎉 " + "x" * 200, "reward": 0.0, "done": False}

    dream = DreamEnv(FunctionExperienceModel(noisy, initial_state="start"), max_steps=3)
    env = EnvToGymnasium(dream, task="t", max_observation_chars=50)
    try:
        env.reset(seed=0)
        obs = env.step("ring")[0]
        assert env.observation_space.contains(obs)
        assert obs.startswith("bell\ufffd \ufffd x") and obs.endswith("…") and len(obs) == 50
    finally:
        env.close()


def test_seeded_resets_draw_the_same_tasks_and_env_seeds() -> None:
    seen: list[tuple[str, int | None]] = []

    def record(req: ExperienceRequest) -> dict[str, Any]:
        seen.append((req.task.instruction, req.seed))
        return {"reasoning": "", "next_state": req.state, "reward": 0.0, "done": True}

    tasks = [Task(instruction=f"task {i}") for i in range(5)]
    env = EnvToGymnasium(DreamEnv(FunctionExperienceModel(record, initial_state="s")), task=tasks)
    try:
        runs = []
        for _ in range(2):
            seen.clear()
            env.reset(seed=7)
            for _ in range(4):
                env.step("a")
                env.reset()
            runs.append(list(seen))
        assert runs[0] == runs[1]
        assert len({instruction for instruction, _ in runs[0]}) > 1  # the tasks are sampled
        env.reset(seed=7, options={"task": "chosen"})
        env.step("a")
        assert seen[-1][0] == "chosen"
    finally:
        env.close()


def test_envs_can_share_one_portal_and_be_driven_from_async_code() -> None:
    with start_blocking_portal() as portal:
        first = EnvToGymnasium(make_dream_env(), task="t", portal=portal)
        second = EnvToGymnasium(make_dream_env(), task="t", portal=portal)
        first.reset(seed=0)
        first.close()  # a borrowed portal keeps running
        assert second.reset(seed=0)[0] == KITCHEN

        async def from_a_running_loop() -> str:
            return second.step("open fridge")[0]

        assert anyio.run(from_a_running_loop) == "fridge: open; apple: in hand"
        second.close()


class GuessWordEnv(gymnasium.Env[str, str]):
    """A gymnasium text game for the tests: guess the secret word, told "higher"/"lower"."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012
    WORDS = ("apple", "grape", "lemon", "mango", "peach")

    def __init__(self, max_guesses: int = 4) -> None:
        self.observation_space = spaces.Text(200, min_length=0, charset="abcdefghijklmnopqrstuvwxyz :.,'\"")
        self.action_space = spaces.Text(10, charset="abcdefghijklmnopqrstuvwxyz")
        self.max_guesses = max_guesses
        self.secret = ""
        self.guesses = 0
        self.closed = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self.secret = self.WORDS[int(self.np_random.integers(len(self.WORDS)))]
        self.guesses = 0
        return "guess a fruit", {"words": list(self.WORDS)}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.guesses += 1
        won = action == self.secret
        hint = "right" if won else ("higher" if action < self.secret else "lower")
        truncated = not won and self.guesses >= self.max_guesses
        return f"{action}: {hint}", float(won), won, truncated, {"is_success": won}

    def close(self) -> None:
        self.closed += 1


def test_the_test_game_is_a_valid_gymnasium_env() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*Not able to test alternative render modes")
        gymnasium_check_env(GuessWordEnv())


async def test_gymnasium_text_env_passes_dreamgym_check_env() -> None:
    await check_env(
        GymnasiumToEnv(GuessWordEnv), task="guess the fruit", actions=("apple", "zzz"), max_steps=10
    )


async def test_round_trip_dream_env_through_gymnasium_passes_check_env() -> None:
    make = lambda: EnvToGymnasium(make_dream_env(), task="store the apple")  # noqa: E731
    await check_env(GymnasiumToEnv(make), actions=("open fridge", "wait"), max_steps=10)


async def test_episode_info_success_and_close() -> None:
    game = GuessWordEnv()
    env = GymnasiumToEnv(game, environment="fruit", max_steps=3)
    obs, info = await env.reset(task="guess", seed=3)
    assert (
        obs == "guess a fruit" and info["task"].instruction == "guess" and info["task"].environment == "fruit"
    )
    assert info["success"] is False
    result = await env.step(game.secret)
    assert result.terminated and result.reward == 1.0 and result.info["success"] is True
    with pytest.raises(EpisodeFinishedError):
        await env.step("apple")
    await env.reset(seed=3)
    for _ in range(2):
        assert not (await env.step("zzz")).done
    assert (await env.step("zzz")).truncated  # our max_steps=3 comes before the game's 4 guesses
    await env.close()
    await env.close()
    assert game.closed == 1
    with pytest.raises(EnvClosedError):
        await env.reset()


async def test_non_text_observations_and_actions_are_converted() -> None:
    class CountEnv(gymnasium.Env[int, int]):
        def __init__(self) -> None:
            self.observation_space = spaces.Discrete(10)
            self.action_space = spaces.Discrete(2)
            self.n = 0

        def reset(
            self, *, seed: int | None = None, options: dict[str, Any] | None = None
        ) -> tuple[int, dict[str, Any]]:
            self.n = 0
            return 0, {}

        def step(self, action: int) -> tuple[int, float, bool, bool, dict[str, Any]]:
            self.n += action
            return self.n, float(action), self.n >= 2, False, {}

    with pytest.raises(TypeError, match="observation_to_text"):
        await GymnasiumToEnv(CountEnv()).reset()
    env = GymnasiumToEnv(
        CountEnv(),
        observation_to_text=lambda obs, info: f"count: {obs}",
        action_from_text={"stay": 0, "add": 1}.__getitem__,
    )
    assert (await env.reset())[0] == "count: 0"
    assert (await env.step("add")).observation == "count: 1"
    assert (await env.step("add")).terminated


async def test_rollouts_record_gymnasium_episodes_as_real() -> None:
    policy = ScriptedPolicy(["mango", "peach", "apple", "grape"])
    runner = RolloutRunner(lambda group: GymnasiumToEnv(GuessWordEnv(), environment="fruit"), policy)
    episodes = await runner.run(
        [Task(instruction="guess the fruit", environment="fruit")], group_size=3, seed=0
    )
    assert len(episodes) == 3
    for episode in episodes:
        assert episode.source == "real" and episode.done and episode.task.instruction == "guess the fruit"


async def test_a_cancelled_step_still_counts_once_it_reached_the_env() -> None:
    entered, release = threading.Event(), threading.Event()

    class SlowEnv(GuessWordEnv):
        def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
            entered.set()
            release.wait()
            return super().step(action)

    game = SlowEnv(max_guesses=1)
    env = GymnasiumToEnv(game)
    await env.reset(seed=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(env.step, "zzz")
        await anyio.to_thread.run_sync(entered.wait)
        tg.cancel_scope.cancel()
        release.set()
    assert game.guesses == 1
    with pytest.raises(EpisodeFinishedError):  # the one allowed guess was used by the cancelled step
        await env.step("apple")


def test_import_without_gymnasium_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['gymnasium'] = None\n"
        "try:\n    import dreamgym_sdk.integrations.gymnasium\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dreamgym-sdk[gymnasium]" in out
