"""The async Env protocol shared by real and synthetic environments, and :class:`DreamEnv`.

A policy, a rollout runner, an evaluator or a trainer only ever sees :class:`Env`, so switching between
the synthetic environment and a real one (sim-to-real) is a one-line change.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.errors import EnvClosedError, EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.events import EpisodeCompleted, EpisodeStarted, TransitionRecorded
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceRequest, derive_seed
from dreamgym_sdk.types import Episode, Provenance, Source, StepResult, Task, Transition, new_id, sample_of

__all__ = ["DreamEnv", "Env", "EpisodeGuard", "RecordedEnv", "RecordingEnv", "TaskLike"]

TaskLike = Task | str
"""A :class:`Task`, or a plain instruction string that becomes one."""


@runtime_checkable
class Env(Protocol):
    """An async, gymnasium-style text environment (one episode at a time).

    ``reset`` starts an episode and returns ``(observation, info)``; ``step`` returns a
    :class:`~dreamgym_sdk.StepResult` with ``terminated`` (the task ended) kept apart from ``truncated``
    (a limit cut it short). ``step`` before ``reset`` raises :class:`ResetNeededError`; ``step`` after the
    episode ended raises :class:`EpisodeFinishedError`; ``close`` is idempotent.
    """

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a new episode of ``task`` and return ``(observation, info)``; ``seed`` and ``options`` as
        in gymnasium."""
        ...

    async def step(self, action: str) -> StepResult:
        """Take ``action``; return the next observation, the reward, ``terminated``, ``truncated`` and
        ``info``."""
        ...

    async def close(self) -> None:
        """Release what the environment holds; idempotent."""
        ...


def _as_task(task: TaskLike | None, environment: str) -> Task:
    if task is None:
        raise ValueError("reset() needs a task: pass task=Task(...) or an instruction string")
    return Task(instruction=task, environment=environment) if isinstance(task, str) else task


class _EpisodeRecorder:
    """Builds an :class:`Episode` step by step and publishes its events (shared by DreamEnv and
    RecordingEnv).

    Appending a transition and publishing it happen together: the publish is the only suspension point
    and is all-or-nothing, so a cancelled step leaves no half-recorded transition.
    """

    __slots__ = (
        "_bus",
        "_transitions",
        "episode_id",
        "group",
        "initial_state",
        "seed",
        "source",
        "started_at",
        "state",
        "task",
    )

    def __init__(
        self,
        bus: EventBus | None,
        task: Task,
        source: Source,
        initial_state: str,
        seed: int | None,
        group: int,
        episode_id: str | None = None,
    ) -> None:
        self._bus = bus
        self.task = task
        self.source = source
        self.initial_state = initial_state
        self.state = initial_state
        self.seed = seed
        self.group = group
        self.episode_id = episode_id or new_id()
        self.started_at = time.time()
        self._transitions: list[Transition] = []

    @property
    def history(self) -> tuple[Transition, ...]:
        return tuple(self._transitions)

    @property
    def steps(self) -> int:
        return len(self._transitions)

    @property
    def done(self) -> bool:
        return bool(self._transitions) and self._transitions[-1].done

    async def start(self) -> None:
        if self._bus is not None:
            await self._bus.publish(
                EpisodeStarted(
                    episode_id=self.episode_id,
                    task=self.task,
                    source=self.source,
                    initial_state=self.initial_state,
                    group=self.group,
                )
            )

    async def record(self, transition: Transition) -> None:
        """Append ``transition`` and publish it (with ``EpisodeCompleted`` when it ends the episode).

        The publish is the only suspension point and is all-or-nothing, so either the transition is
        appended and every subscriber gets its events, or (when cancelled) nothing happens.
        """
        if self._bus is not None:
            recorded = TransitionRecorded(transition=transition)
            if transition.done:
                await self._bus.publish(recorded, EpisodeCompleted(episode=self._episode(transition)))
            else:
                await self._bus.publish(recorded)
        self._transitions.append(transition)
        self.state = transition.next_state

    def episode(self) -> Episode:
        return self._episode(None)

    def _episode(self, last: Transition | None) -> Episode:
        transitions = (*self._transitions, last) if last is not None else tuple(self._transitions)
        done = bool(transitions) and transitions[-1].done
        return Episode(
            id=self.episode_id,
            task=self.task,
            source=self.source,
            initial_state=self.initial_state,
            transitions=transitions,
            group=self.group,
            seed=self.seed,
            started_at=self.started_at,
            ended_at=time.time() if done else None,
        )


class EpisodeGuard:
    """The lifecycle every env keeps: nothing after ``close``, no ``step`` before a completed ``reset`` or
    after the episode ended, and the step limit.

    An env wrapping a real one holds one and calls it::

        async def reset(...):
            self.guard.check_open()
            self.guard.resetting()          # a reset that fails or is cancelled leaves no episode
            ...                             # reset the wrapped env
            self.guard.started()

        async def step(self, action):
            self.guard.check_step()
            ...                             # step the wrapped env
            truncated = self.guard.stepped(terminated, self.max_steps)  # hit the step limit
    """

    def __init__(self) -> None:
        self.closed = False
        self.running = False
        """An episode was started and has not ended."""
        self.steps = 0
        """Steps of the current (or last) episode."""
        self._started = False

    def check_open(self) -> None:
        """Raises :class:`EnvClosedError` once the env is closed."""
        if self.closed:
            raise EnvClosedError("this environment is closed")

    def check_step(self) -> None:
        """Raises what a ``step`` now must: closed, never (or not completely) reset, or episode over."""
        self.check_open()
        if not self._started:
            raise ResetNeededError("call reset() before step()")
        if not self.running:
            raise EpisodeFinishedError(
                f"the episode ended after {self.steps} step(s); call reset() to start a new one"
            )

    def resetting(self) -> None:
        """A reset began: until :meth:`started`, no episode can be stepped."""
        self._started = self.running = False

    def started(self, *, done: bool = False) -> None:
        """A reset completed (``done``: the environment ended the episode at once)."""
        self._started, self.running, self.steps = True, not done, 0

    def stepped(self, ended: bool, max_steps: int | None) -> bool:
        """Count a step that the environment ``ended`` the episode with (or not); returns whether
        ``max_steps`` (``None``: no limit) cuts the episode short here."""
        self.steps += 1
        truncated = not ended and max_steps is not None and self.steps >= max_steps
        self.running = not (ended or truncated)
        return truncated

    def close(self) -> bool:
        """Mark the env closed; returns ``False`` when it already was (``close`` is idempotent)."""
        was_open, self.closed = not self.closed, True
        return was_open


class RecordedEnv(ABC):
    """Base of envs that record their episodes (DreamEnv, RecordingEnv): step ordering, closing, the
    current episode and its history."""

    environment: str
    bus: EventBus | None
    """Where the episode events are published."""
    group: int
    """Index of this rollout within its task's group."""
    _recorder: _EpisodeRecorder | None = None
    _closed: bool = False

    def _check_can_step(self) -> _EpisodeRecorder:
        if self._closed:
            raise EnvClosedError("this environment is closed")
        rec = self._recorder
        if rec is None:
            raise ResetNeededError("call reset() before step()")
        if rec.done:
            raise EpisodeFinishedError(
                f"episode {rec.episode_id} already ended after {rec.steps} step(s); "
                "call reset() to start a new one"
            )
        return rec

    async def _start_episode(
        self,
        task: Task,
        source: Source,
        initial_state: str,
        seed: int | None,
        *,
        episode_id: str | None = None,
    ) -> _EpisodeRecorder:
        """Begin recording a new episode (publishes ``EpisodeStarted``); ``reset`` implementations call it."""
        rec = _EpisodeRecorder(self.bus, task, source, initial_state, seed, self.group, episode_id)
        await rec.start()
        self._recorder = rec
        return rec

    @abstractmethod
    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a new episode; see :class:`Env`."""

    @abstractmethod
    async def step(self, action: str) -> StepResult:
        """Take one step; see :class:`Env`."""

    @property
    def history(self) -> tuple[Transition, ...]:
        """The transitions of the current episode so far, oldest first."""
        return () if self._recorder is None else self._recorder.history

    @property
    def episode(self) -> Episode | None:
        """The current (or last) episode so far, or ``None`` before the first reset."""
        return None if self._recorder is None else self._recorder.episode()

    async def close(self) -> None:
        """Close the environment; idempotent."""
        self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class DreamEnv(RecordedEnv):
    """A synthetic environment: every step is produced by an :class:`ExperienceModel`.

    Cheap to create: make one per episode and run many concurrently over shared components (model,
    bus, replay buffer).

    ```python
    async with DreamEnv(model, bus=bus, max_steps=20) as env:
        obs, info = await env.reset(task="put the apple in the fridge")
        result = await env.step("open fridge")
        obs, reward, terminated, truncated, info = result
    ```

    The experience model only predicts the next state; a policy that picks from the admissible commands,
    as it does in a real TextWorld game, needs them in ``info`` too. ``admissible`` derives them from the
    state: ``reset`` and ``step`` put ``admissible(state)`` into ``info["admissible_commands"]`` for the
    state the policy now sees, unless the model's prediction already provides that key.

    ```python
    from dreamgym_sdk.integrations.textworld import admissible_commands

    env = DreamEnv(model, admissible=admissible_commands)  # TextWorld's command grammar on the state
    obs, info = await env.reset(task=game.to_task())  # game: a cooking game's GameInfo
    result = await env.step(info["admissible_commands"][0])  # result.info lists the next state's
    ```

    Args:
        model: the experience model that synthesises transitions.
        bus: where to publish ``EpisodeStarted``, ``TransitionRecorded`` and ``EpisodeCompleted``.
        max_steps: the episode is truncated after this many steps.
        environment: the environment name recorded on tasks given as strings and on transitions.
        group: index of this rollout within its task's group (set by the rollout runner).
        admissible: maps a state to the commands admissible in it, put into
            ``info["admissible_commands"]`` (for TextWorld states,
            :func:`~dreamgym_sdk.integrations.textworld.admissible_commands`, or
            ``functools.partial(admissible_commands, kind="custom")`` for custom quests); it is called
            before the step is recorded, so an error in it leaves no trace. ``None`` lists none.
    """

    def __init__(
        self,
        model: ExperienceModel,
        *,
        bus: EventBus | None = None,
        max_steps: int = 30,
        environment: str = "dream",
        group: int = 0,
        admissible: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.model = model
        self.admissible = admissible
        self.bus = bus
        self.max_steps = max_steps
        self.environment = environment
        self.group = group
        self._seed: int | None = None

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start a new episode of ``task`` and return ``(initial_state, info)``.

        Args:
            task: the task, or an instruction string.
            seed: sampling seed of the episode; step ``i`` asks the experience model with
                ``derive_seed(seed, "step", i)``, so the same seed and actions replay the same episode.
            options: ``{"initial_state": str}`` overrides the task's initial state.
        """
        if self._closed:
            raise EnvClosedError("this environment is closed")
        the_task = _as_task(task, self.environment)
        state = (options or {}).get("initial_state") or the_task.initial_state
        if state is None:
            state = await self.model.initial_state(the_task)
        admissible = None if self.admissible is None else list(self.admissible(state))
        self._seed = seed
        rec = await self._start_episode(the_task, Source.SYNTHETIC, state, seed)
        info: dict[str, Any] = {
            "episode_id": rec.episode_id,
            "task_id": the_task.id,
            "source": Source.SYNTHETIC.value,
        }
        if admissible is not None:
            info["admissible_commands"] = admissible
        return state, info

    async def step(self, action: str) -> StepResult:
        """Synthesise the next transition for ``action``."""
        rec = self._check_can_step()
        index = rec.steps
        request = ExperienceRequest(
            task=rec.task,
            state=rec.state,
            action=action,
            history=(*rec.task.history, *rec.history),
            episode_id=rec.episode_id,
            step=index,
            seed=None if self._seed is None else derive_seed(self._seed, "step", index),
        )
        prediction = await self.model.predict(request)
        out = prediction.output
        admissible = None
        if self.admissible is not None and "admissible_commands" not in prediction.info:
            admissible = list(self.admissible(out.next_state))
        truncated = not out.done and index + 1 >= self.max_steps
        transition = Transition(
            task_id=rec.task.id,
            episode_id=rec.episode_id,
            step=index,
            environment=rec.task.environment,
            state=rec.state,
            action=action,
            reasoning=out.reasoning,
            next_state=out.next_state,
            reward=out.reward,
            terminated=out.done,
            truncated=truncated,
            success=out.success,
            source=Source.SYNTHETIC,
            provenance=prediction.provenance,
            sample=sample_of(action),
        )
        await rec.record(transition)
        info = _step_info(transition, prediction.provenance)
        if prediction.info:
            info.update(prediction.info)
        if admissible is not None:
            info["admissible_commands"] = admissible
        return StepResult(out.next_state, out.reward, out.done, truncated, info)


class RecordingEnv(RecordedEnv):
    """Wraps any :class:`Env` (typically a real one) so its episodes are recorded and published like a
    DreamEnv's, with ``source="real"`` by default.

    Args:
        env: the environment to wrap; it is closed with the wrapper.
        bus: where to publish the episode events.
        source: the source recorded on transitions.
        environment: the environment name recorded on transitions and string tasks.
        group: index of this rollout within its task's group.
    """

    def __init__(
        self,
        env: Env,
        *,
        bus: EventBus | None = None,
        source: Source = Source.REAL,
        environment: str = "real",
        group: int = 0,
    ) -> None:
        self.env = env
        self.bus = bus
        self.source = source
        self.environment = environment
        self.group = group

    async def reset(
        self, *, task: TaskLike | None = None, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset the wrapped env and start recording the episode; ``info`` gains ``episode_id``,
        ``task_id`` and ``source``."""
        if self._closed:
            raise EnvClosedError("this environment is closed")
        obs, info = await self.env.reset(task=task, seed=seed, options=options)
        the_task = info.get("task")
        if not isinstance(the_task, Task):
            the_task = (
                _as_task(task, self.environment)
                if task is not None
                else Task(instruction=str(info.get("objective", "")), environment=self.environment)
            )
        rec = await self._start_episode(the_task, self.source, obs, seed)
        return obs, {
            **info,
            "episode_id": rec.episode_id,
            "task_id": the_task.id,
            "source": self.source.value,
        }

    async def step(self, action: str) -> StepResult:
        """Step the wrapped env and record the transition; see :meth:`Env.step`."""
        rec = self._check_can_step()
        started = time.perf_counter()
        result = await self.env.step(action)
        provenance = Provenance(
            model=self.environment, latency_s=time.perf_counter() - started, reward_source="environment"
        )
        info = result.info
        transition = Transition(
            task_id=rec.task.id,
            episode_id=rec.episode_id,
            step=rec.steps,
            environment=rec.task.environment,
            state=rec.state,
            action=action,
            reasoning=str(info.get("reasoning", "")),
            next_state=result.observation,
            reward=float(result.reward),
            terminated=result.terminated,
            truncated=result.truncated,
            success=bool(info.get("success", False)),
            source=self.source,
            provenance=provenance,
            sample=sample_of(action),
        )
        await rec.record(transition)
        return StepResult(
            result.observation,
            result.reward,
            result.terminated,
            result.truncated,
            {**info, **_step_info(transition, provenance)},
        )

    async def close(self) -> None:
        """Close the wrapper and the wrapped env; idempotent."""
        if not self._closed:
            self._closed = True
            await self.env.close()


def _step_info(transition: Transition, provenance: Provenance) -> dict[str, Any]:
    return {
        "reasoning": transition.reasoning,
        "success": transition.success,
        "source": transition.source.value,
        "retrieved_ids": list(provenance.retrieved_ids),
        "transition_id": transition.id,
        "episode_id": transition.episode_id,
        "step": transition.step,
        "provenance": provenance,
    }
