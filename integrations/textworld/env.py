""":class:`TextWorldEnv`: a TextWorld game behind the async :class:`~dreamgym_sdk.Env` protocol."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio

from dreamgym_sdk._imports import require
from dreamgym_sdk.env import EpisodeGuard, TaskLike
from dreamgym_sdk.types import StepResult, Task

from ._text import clean_feedback
from .games import GameInfo
from .state import AbstractState, Fact, TextWorldStateMapper

__all__ = ["ObservationMode", "TextWorldEnv"]

# TextWorld is not thread-safe (its logic parser, used whenever a game loads, is a module global): every
# engine call of every TextWorldEnv in the process runs under this lock, in a worker thread.
_ENGINE_LOCK = threading.Lock()


def _locked(fn: Callable[..., Any], *args: Any) -> Any:
    with _ENGINE_LOCK:
        return fn(*args)


async def _run_engine(fn: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(_locked, fn, *args)


_BASE_INFOS = (
    "admissible_commands",
    "policy_commands",
    "facts",
    "score",
    "max_score",
    "won",
    "lost",
    "moves",
    "objective",
)


class ObservationMode(StrEnum):
    """What :class:`TextWorldEnv` returns as the observation."""

    ABSTRACT = "abstract"
    """The rendered :class:`AbstractState` (the same state space as a DreamEnv trained on it)."""
    RAW = "raw"
    """TextWorld's own text, without the title banner and the prompt line."""


class TextWorldEnv:
    """A real environment that plays one TextWorld game per episode.

    Rewards are score deltas, so an episode's rewards add up to its final score; an episode terminates
    when the game is won (``info["success"]``) or lost, and is truncated after ``max_steps`` steps.

    The engine runs in a worker thread, off the event loop. TextWorld is not thread-safe, so the engine
    calls of all TextWorldEnvs in one process take turns (a step takes a few milliseconds); use several
    processes to play on several cores.

    ```python
    async with TextWorldEnv(game) as env:          # game: a GameInfo or a path to a .z8 file
        obs, info = await env.reset()
        result = await env.step(info["admissible_commands"][0])
    ```

    ``reset(task=...)`` also accepts a task from :meth:`GameInfo.to_task`: the env then loads that task's
    game, so one env factory serves every game (as :class:`~dreamgym_sdk.RolloutRunner` needs).

    ``info`` holds ``admissible_commands``, ``objective``, ``walkthrough`` and ``policy_commands`` (when
    available), ``score``, ``max_score``, ``won``, ``lost``, ``success``, ``moves``, ``feedback`` (the
    cleaned game text), ``abstract_state`` (an :class:`AbstractState`), ``facts`` (strings, unless
    ``include_facts=False``), ``task`` (the game's :class:`~dreamgym_sdk.Task`), ``game_path`` and ``seed``.

    Args:
        game: the game to play when ``reset`` gets no task (a :class:`GameInfo` or a ``.z8`` path).
        max_steps: the episode is truncated after this many steps.
        observation: ``"abstract"`` (default) or ``"raw"``.
        mapper: builds the abstract state; defaults to ``TextWorldStateMapper()``.
        include_facts: put the world's facts in ``info["facts"]`` (ground truth for annotators).
        extra_infos: further TextWorld ``EnvInfos`` fields to request and pass through in ``info``
            (e.g. ``("description", "inventory")``; each costs engine time on every step).
    """

    def __init__(
        self,
        game: GameInfo | str | Path | None = None,
        *,
        max_steps: int = 50,
        observation: ObservationMode | str = ObservationMode.ABSTRACT,
        mapper: TextWorldStateMapper | None = None,
        include_facts: bool = True,
        extra_infos: Sequence[str] = (),
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.max_steps = max_steps
        self.observation = ObservationMode(observation)
        self.mapper = mapper if mapper is not None else TextWorldStateMapper()
        self.include_facts = include_facts
        self.extra_infos = tuple(extra_infos)
        self._default_game = game
        self._game: GameInfo | None = game if isinstance(game, GameInfo) else None
        self._engine: Any = None
        self._engine_path: Path | None = None
        self._task: Task | None = None
        self._seed: int | None = None
        self._score = 0.0
        self._guard = EpisodeGuard()
        self._lock = anyio.Lock()

    @property
    def game(self) -> GameInfo | None:
        """The game of the current (or last) episode."""
        return self._game

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Restart the game (or load the game of ``task``) and return ``(observation, info)``.

        Args:
            task: ``None`` for the env's game, or a task from :meth:`GameInfo.to_task`.
            seed: passed to the Z-machine; TextWorld games are deterministic either way.
            options: unused.

        Raises:
            EnvClosedError: the env is closed.
            ValueError: no game to play (no ``game`` given and the task names none).
        """
        self._guard.check_open()
        async with self._lock:
            self._guard.resetting()  # a cancelled reset leaves no episode
            game = await self._resolve_game(task)
            await self._load(game.path)
            engine = self._engine
            if seed is not None:
                await _run_engine(engine.seed, seed)
            state = await _run_engine(engine.reset)
            self._game, self._seed = game, seed
            self._score = float(state["score"] or 0)
            self._guard.started()
            feedback = str(state["feedback"] or "")
            abstract = self.mapper.state(state, feedback=None)
            obs = self._observation(abstract, feedback)
            base = task if isinstance(task, Task) else game.to_task()
            if base.initial_state is None:
                base = base.model_copy(update={"initial_state": obs})
            self._task = base
            return obs, self._info(state, feedback, abstract)

    async def step(self, action: str) -> StepResult:
        """Send ``action`` to the game.

        Raises:
            EnvClosedError: the env is closed.
            ResetNeededError: no episode was started, or the last ``reset`` was cancelled.
            EpisodeFinishedError: the episode already terminated or was truncated.
        """
        async with self._lock:
            self._guard.check_step()
            command = " ".join(action.split())  # one command: no newlines reach the interpreter
            # The engine call is shielded from cancellation and nothing below awaits: a step either
            # happens completely or not at all.
            state, score, done = await _run_engine(self._engine.step, command)
            reward = float(score or 0) - self._score
            self._score = float(score or 0)
            won, lost = bool(state["won"]), bool(state["lost"])
            terminated = won or lost or bool(done)
            truncated = self._guard.stepped(terminated, self.max_steps)
            feedback = str(state["feedback"] or "")
            abstract = self.mapper.state(state, feedback=feedback)
            obs = self._observation(abstract, feedback)
            return StepResult(obs, reward, terminated, truncated, self._info(state, feedback, abstract))

    async def close(self) -> None:
        """Stop the engine; idempotent."""
        if not self._guard.close():
            return
        with anyio.CancelScope(shield=True):  # waits for a running step, then always stops the engine
            async with self._lock:
                engine, self._engine = self._engine, None
                if engine is not None:
                    await _run_engine(engine.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _resolve_game(self, task: TaskLike | None) -> GameInfo:
        if isinstance(task, str):
            raise ValueError("TextWorldEnv plays its game's objective: pass task=None or GameInfo.to_task()")
        default = self._default_game
        path = task.metadata.get("game_path") if task is not None else None
        if path is None:
            if default is None:
                raise ValueError("no game to play: pass TextWorldEnv(game) or a task from GameInfo.to_task()")
            if isinstance(default, GameInfo):
                return default
            path = default
        resolved = await anyio.Path(path).resolve()
        for known in (self._game, default):
            if isinstance(known, GameInfo) and known.path == Path(resolved):
                return known
        return await anyio.to_thread.run_sync(GameInfo.load, Path(resolved))

    async def _load(self, path: Path) -> None:
        if self._engine is not None and self._engine_path == path:
            return
        textworld = require("textworld", extra="textworld", feature="TextWorldEnv")
        # Jericho cannot read scores from TextWorld's games and says so on every load; TextWorld's own
        # wrappers track the score, so the warning is noise.
        warnings.filterwarnings("ignore", message=r"Game '.*' is not fully supported", module="jericho")
        names = (*_BASE_INFOS, *(n for n in self.extra_infos if n not in _BASE_INFOS))
        request = textworld.EnvInfos(**dict.fromkeys(names, True), extras=["walkthrough"])
        old, self._engine, self._engine_path = self._engine, None, None
        if old is not None:
            await _run_engine(old.close)
        self._engine = await _run_engine(textworld.start, str(path), request)
        self._engine_path = path

    def _observation(self, abstract: AbstractState, feedback: str) -> str:
        if self.observation is ObservationMode.ABSTRACT:
            return abstract.render()
        return clean_feedback(feedback)

    def _info(self, state: Any, feedback: str, abstract: AbstractState) -> dict[str, Any]:
        game, task = self._game, self._task
        assert game is not None and task is not None
        won = bool(state["won"])
        walkthrough = state.get("extra.walkthrough") or list(game.walkthrough)
        info: dict[str, Any] = {
            "admissible_commands": list(state["admissible_commands"] or ()),
            "objective": state["objective"] or game.objective,
            "score": float(state["score"] or 0),
            "max_score": float(state["max_score"] if state["max_score"] is not None else game.max_score),
            "won": won,
            "lost": bool(state["lost"]),
            "success": won,
            "moves": state["moves"],
            "feedback": clean_feedback(feedback),
            "abstract_state": abstract,
            "task": task,
            "game_path": str(game.path),
            "seed": self._seed,
        }
        if walkthrough:
            info["walkthrough"] = list(walkthrough)
        if state["policy_commands"] is not None:
            info["policy_commands"] = list(state["policy_commands"])
        if self.include_facts:
            info["facts"] = [str(Fact.of(f)) for f in state["facts"] or ()]
        for name in self.extra_infos:
            info.setdefault(name, state.get(name))
        return info
