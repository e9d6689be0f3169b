"""Environments for TRL's ``GRPOTrainer(environment_factory=...)``: one Env episode per rollout, as tools.

TRL's contract (``trl.GRPOTrainer``, read from its source): the factory is called with no arguments and
returns an instance; every public method of the instance's *class* except ``reset`` and ``get_reward``
becomes a tool, its schema built from the type hints and the Google-style docstring; ``reset(**row)`` is
called synchronously with the dataset row before each rollout and may return text appended to the last
user message; ``get_reward()`` is called once per finished rollout and returns a float. Instances are
pooled and reset again for later batches; TRL never closes them. A tool that raises is reported to the
model as ``{"error": message}``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Self

from anyio.from_thread import BlockingPortal
from typing_extensions import TypeVar

from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv, TaskLike
from dreamgym_sdk.errors import EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.types import Episode, StepResult, Task

from .._sync import LoopThread

__all__ = ["DEFAULT_PROMPT", "TRLEnvironmentFactory", "TextActionEnvironment", "ToolEnvironment"]

DEFAULT_PROMPT = "{instruction}\n\nCurrent state:\n{observation}"
"""What ``reset`` appends to the prompt; ``{instruction}`` and ``{observation}`` are filled in."""


class ToolEnvironment:
    """One episode of an :class:`~dreamgym_sdk.Env` per TRL rollout; subclass it to add typed tools.

    It has no tools of its own: every public method you add becomes one (TRL reads the class), and calls
    :meth:`_act` with the text action the environment understands::

        class WebTools(ToolEnvironment):
            def click(self, element: int) -> str:
                \"\"\"Click an element of the page.

                Args:
                    element: the number in brackets before the element.
                \"\"\"
                return self._act(f"click [{element}]")

    :class:`TextActionEnvironment` is the ready-made variant with one free-text ``act`` tool. Keep other
    helpers private (``_name``): a public method is a tool.

    Instances are made by :class:`TRLEnvironmentFactory`, which owns the event loop they run on.
    """

    def __init__(self, factory: TRLEnvironmentFactory[Any]) -> None:
        self._factory = factory
        self._env: Env | None = None
        self._task: Task | None = None
        self._last: StepResult | None = None
        self._rewards: list[float] = []
        self._reported = True

    # -- TRL's protocol ------------------------------------------------------------------------------
    def reset(self, **row: Any) -> str:
        """Start a new episode for the dataset ``row`` and return the text TRL appends to the prompt.

        The task comes from the row's ``task`` column (an instruction, a ``Task`` or its dict) or
        ``task_id`` column (an id among the factory's tasks), else from the factory's task pool. A
        ``seed`` column overrides the factory's seed.
        """
        factory = self._factory
        task, seed = factory._assign(row)  # pyright: ignore[reportPrivateUsage]
        if self._env is None:
            made = factory.make_env()
            # real envs are recorded too, so that every rollout yields an Episode (sim-to-real with TRL)
            self._env = (
                made if isinstance(made, RecordedEnv) else RecordingEnv(made, environment=factory.environment)
            )
        env = self._env

        async def start() -> tuple[str, dict[str, Any]]:
            return await env.reset(task=task, seed=seed)

        observation, _info = factory.loop.call(start)
        self._task, self._last, self._rewards, self._reported = task, None, [], False
        text = factory.prompt_template.format(instruction=task.instruction, observation=observation)
        return ("\n\n" + text) if _last_user_text(row.get("prompt")) else text

    def get_reward(self) -> float:
        """The episode's total reward so far (0 when the model took no action).

        Also hands the episode to the factory's ``on_episode`` callback, once.
        """
        if not self._reported:
            self._reported = True
            episode = self.episode
            if episode is not None and self._factory.on_episode is not None:
                self._factory.on_episode(episode)
        return float(sum(self._rewards))

    # -- for subclasses --------------------------------------------------------------------------------
    def _act(self, action: str) -> str:
        """Step the environment with ``action`` and return the text the model sees."""
        env = self._env
        if env is None or self._task is None:
            raise ResetNeededError("the environment was not reset")
        if self._last is not None and self._last.done:
            raise EpisodeFinishedError("the episode is over: no further actions are accepted")
        result = self._factory.loop.call(env.step, action)
        self._last = result
        self._rewards.append(float(result.reward))
        return self._format_result(result)

    def _format_result(self, result: StepResult) -> str:
        """The tool's answer: the new observation, and how the episode ended when it did."""
        if not result.done:
            return result.observation
        if result.terminated:
            ending = "success" if result.info.get("success") else "failure"
        else:
            ending = "step limit reached"
        return f"{result.observation}\n\n[The episode is over: {ending}.]"

    @property
    def episode(self) -> Episode | None:
        """The current episode so far (``None`` before the first reset)."""
        return self._env.episode if isinstance(self._env, RecordedEnv) else None

    @property
    def done(self) -> bool:
        """Whether the current episode has ended."""
        return self._last is not None and self._last.done


class TextActionEnvironment(ToolEnvironment):
    """A :class:`ToolEnvironment` with one tool, ``act``, taking the action as free text."""

    def act(self, action: str) -> str:
        """Take an action in the environment and observe its result.

        Args:
            action: The action to take, as a short command (for example "open fridge").

        Returns:
            The new state of the environment, and whether the episode is over.
        """
        return self._act(action)


E = TypeVar("E", bound=ToolEnvironment, default=TextActionEnvironment)


class TRLEnvironmentFactory(Generic[E]):
    """Pass it as ``GRPOTrainer(environment_factory=...)``: makes a :class:`ToolEnvironment` per rollout.

    ```python
    factory = TRLEnvironmentFactory(lambda: DreamEnv(model, max_steps=10), tasks=tasks, group_size=4)
    trainer = GRPOTrainer(model=..., args=GRPOConfig(num_generations=4, max_steps=100, ...),
                          environment_factory=factory)
    ```

    **The event loop.** TRL calls ``reset`` and the tools synchronously. Every env call of every
    environment made by this factory runs on one event loop in a background thread, started on first
    use and stopped by :meth:`close` (or pass ``portal=`` to use one you own), so shared components
    (experience model, provider sessions, replay buffer) always see the same loop.

    **Tasks.** Without a ``task`` column in the dataset (or with no dataset at all, when the environment
    owns the data), tasks are taken from ``tasks`` in turn, each for ``group_size`` consecutive rollouts:
    set it to ``GRPOConfig.num_generations`` so that the rollouts of one GRPO group play the same task.
    The pool counts rollouts per process: with several training processes, give tasks as a dataset
    column instead (TRL repeats each row for its whole group).

    Args:
        make_env: makes the env of one environment instance (called once per instance; the env is
            reset for each rollout). Typically ``lambda: DreamEnv(model, max_steps=...)``; a real env
            is wrapped in :class:`~dreamgym_sdk.RecordingEnv` so its rollouts are recorded too.
        tasks: the task pool for rows without a task.
        group_size: consecutive rollouts that share a task from the pool.
        environment_class: the :class:`ToolEnvironment` subclass defining the tools.
        seed: base seed; rollout ``n`` of this factory is reset with ``seed + n`` (``None``: unseeded).
        prompt_template: what ``reset`` returns, with ``{instruction}`` and ``{observation}``.
        environment: the environment name of tasks given as strings.
        on_episode: called (in TRL's thread) with each episode when TRL scores it.
        portal: an anyio blocking portal to run on instead of an own loop thread.
    """

    def __init__(
        self,
        make_env: Callable[[], Env],
        *,
        tasks: Sequence[TaskLike] = (),
        group_size: int = 1,
        environment_class: type[E] = TextActionEnvironment,
        seed: int | None = None,
        prompt_template: str = DEFAULT_PROMPT,
        environment: str = "dream",
        on_episode: Callable[[Episode], None] | None = None,
        portal: BlockingPortal | None = None,
    ) -> None:
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        self.make_env = make_env
        self.environment = environment
        self.tasks = [
            Task(instruction=t, environment=environment) if isinstance(t, str) else t for t in tasks
        ]
        self.group_size = group_size
        self.environment_class = environment_class
        self.seed = seed
        self.prompt_template = prompt_template
        self.on_episode = on_episode
        self.loop = LoopThread(portal, name="dreamgym-trl")
        """Where the env calls run."""
        self.environments: list[E] = []
        """Every environment made so far."""
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> E:
        """Make a new environment instance (what TRL calls)."""
        instance = self.environment_class(self)
        with self._lock:
            self.environments.append(instance)
        return instance

    def close(self) -> None:
        """Close every env made and stop the loop thread; idempotent."""
        if self.loop.closed:
            return
        try:
            for instance in self.environments:
                env = instance._env  # pyright: ignore[reportPrivateUsage]
                if env is not None:
                    self.loop.call(env.close)
        finally:
            self.loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _assign(self, row: Mapping[str, Any]) -> tuple[Task, int | None]:
        """The task and seed of the next rollout, for the dataset ``row``."""
        with self._lock:
            n = next(self._counter)
        task = self._task_of(row, n)
        seed = row.get("seed")
        if seed is None and self.seed is not None:
            seed = self.seed + n
        return task, None if seed is None else int(seed)

    def _task_of(self, row: Mapping[str, Any], n: int) -> Task:
        given = row.get("task")
        if isinstance(given, Task):
            return given
        if isinstance(given, str) and given:
            return Task(instruction=given, environment=self.environment)
        if isinstance(given, Mapping):
            return Task.model_validate(given)
        task_id = row.get("task_id")
        if task_id is not None:
            for task in self.tasks:
                if task.id == task_id:
                    return task
            raise KeyError(f"no task with id {task_id!r} among the factory's tasks")
        if not self.tasks:
            raise ValueError(
                "no task for this rollout: give the dataset a 'task' column or the factory tasks="
            )
        return self.tasks[(n // self.group_size) % len(self.tasks)]


def _last_user_text(prompt: object) -> str:
    """The text of the prompt TRL appends to (its last message's content), if any."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and prompt:
        last: object = prompt[-1]  # pyright: ignore[reportUnknownVariableType]
        if isinstance(last, Mapping):
            content: object = last.get("content")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            return content if isinstance(content, str) else ""
    return ""
