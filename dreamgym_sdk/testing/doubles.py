"""Public test doubles: experience models, policies and a trainer backend you can script."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from dreamgym_sdk.experience.base import ExperienceOutput, ExperienceRequest, Prediction
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse
from dreamgym_sdk.types import Episode, Provenance, Task, Transition

__all__ = [
    "FunctionExperienceModel",
    "FunctionPolicy",
    "FunctionProvider",
    "RecordingTrainer",
    "ScriptExhaustedError",
    "ScriptedExperienceModel",
    "ScriptedPolicy",
    "ScriptedProvider",
]

OutputLike = ExperienceOutput | Mapping[str, Any]
ExperienceFn = Callable[[ExperienceRequest], OutputLike | Awaitable[OutputLike]]


def _as_output(value: OutputLike) -> ExperienceOutput:
    return value if isinstance(value, ExperienceOutput) else ExperienceOutput.model_validate(value)


class ScriptExhaustedError(AssertionError):
    """Raised when a scripted double is asked for more answers than it was given."""


class FunctionExperienceModel:
    """An experience model that calls your function (sync or async) for every step.

    ```python
    def world(req: ExperienceRequest) -> dict[str, object]:
        won = req.action == "open door"
        return {"reasoning": "...", "next_state": "outside" if won else req.state,
                "reward": float(won), "done": won, "success": won}

    model = FunctionExperienceModel(world, initial_state="a locked room")
    ```

    Args:
        fn: maps an :class:`ExperienceRequest` to an :class:`ExperienceOutput` (or a dict of its fields).
        initial_state: the state of tasks that carry none; a callable receives the task.
        name: recorded as the model in every transition's provenance.
    """

    def __init__(
        self, fn: ExperienceFn, *, initial_state: str | Callable[[Task], str] = "", name: str = "function"
    ) -> None:
        self.fn = fn
        self._initial_state = initial_state
        self._provenance = Provenance(model=name, prompt_version="n/a")
        self.calls = 0

    async def initial_state(self, task: Task) -> str:
        """``initial_state``, or what it returns for ``task`` when it is a callable."""
        init = self._initial_state
        return init(task) if callable(init) else init

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """The output ``fn`` returns for ``request`` (awaited when ``fn`` is async)."""
        self.calls += 1
        value = self.fn(request)
        if inspect.isawaitable(value):
            value = await value
        return Prediction(_as_output(value), self._provenance)


class ScriptedExperienceModel:
    """An experience model that returns the given outputs in order, one per step (across episodes).

    Raises :class:`ScriptExhaustedError` when asked for more; ``unconsumed`` tells what was left over.
    """

    def __init__(
        self, outputs: Iterable[OutputLike], *, initial_state: str = "", name: str = "scripted"
    ) -> None:
        self._outputs = [_as_output(o) for o in outputs]
        self._next = 0
        self._initial_state = initial_state
        self._provenance = Provenance(model=name, prompt_version="n/a")
        self.requests: list[ExperienceRequest] = []
        """Every request received, in order."""

    @property
    def unconsumed(self) -> list[ExperienceOutput]:
        """Scripted outputs not yet returned."""
        return self._outputs[self._next :]

    async def initial_state(self, task: Task) -> str:
        """The ``initial_state`` given, whatever the task."""
        return self._initial_state

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """The next scripted output; raises :class:`ScriptExhaustedError` when none is left."""
        if self._next >= len(self._outputs):
            raise ScriptExhaustedError(
                f"scripted experience model ran out after {len(self._outputs)} outputs"
            )
        self.requests.append(request)
        output = self._outputs[self._next]
        self._next += 1
        return Prediction(output, self._provenance)


PolicyFn = Callable[[Task, str, Sequence[Transition], Mapping[str, Any]], str | Awaitable[str]]


class FunctionPolicy:
    """A policy that calls ``fn(task, observation, history, info) -> action`` (sync or async)."""

    def __init__(self, fn: PolicyFn) -> None:
        self.fn = fn

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """The action ``fn`` returns (awaited when ``fn`` is async)."""
        action = self.fn(task, observation, history, info)
        if inspect.isawaitable(action):
            action = await action
        return action


class ScriptedPolicy:
    """A policy that plays the given actions in order, restarting from the first at every new episode."""

    def __init__(self, actions: Sequence[str]) -> None:
        if not actions:
            raise ValueError("ScriptedPolicy needs at least one action")
        self.actions = list(actions)

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """The action at index ``len(history)``; raises :class:`ScriptExhaustedError` past the last."""
        if len(history) >= len(self.actions):
            raise ScriptExhaustedError(f"scripted policy has only {len(self.actions)} actions")
        return self.actions[len(history)]


class RecordingTrainer:
    """A trainer backend that records what it observes; shows the shape of a real backend.

    ``update`` returns simple metrics of the episodes observed since the last update and clears them.
    """

    def __init__(self) -> None:
        self.episodes: list[Episode] = []
        """Every episode observed, in order of arrival."""
        self.pending: list[Episode] = []
        self.updates = 0

    async def observe(self, episode: Episode) -> None:
        """Record ``episode`` in :attr:`episodes` and for the next update."""
        self.episodes.append(episode)
        self.pending.append(episode)

    async def update(self) -> dict[str, float] | None:
        """``episodes``, ``mean_reward`` and ``success_rate`` of the episodes observed since the last update,
        or ``None`` when there are none."""
        if not self.pending:
            return None
        batch, self.pending = self.pending, []
        self.updates += 1
        return {
            "episodes": float(len(batch)),
            "mean_reward": sum(e.total_reward for e in batch) / len(batch),
            "success_rate": sum(e.success for e in batch) / len(batch),
        }


ProviderFn = Callable[[ChatRequest], str | ChatResponse | Awaitable[str | ChatResponse]]


class FunctionProvider:
    """A provider that answers with your function ``fn(request) -> text`` (sync or async).

    Use it in place of a hosted model in tests; every request is kept in ``requests``.
    """

    def __init__(self, fn: ProviderFn, *, model: str = "test/function") -> None:
        self.fn = fn
        self._model = model
        self.requests: list[ChatRequest] = []

    @property
    def model(self) -> str:
        """The ``model`` given; answers made from a text carry it."""
        return self._model

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Keep ``request`` and answer with what ``fn`` returns (a text becomes a ``ChatResponse``)."""
        self.requests.append(request)
        value = self.fn(request)
        if inspect.isawaitable(value):
            value = await value
        if isinstance(value, ChatResponse):
            return value
        return ChatResponse(text=value, model=self._model, finish_reason="stop")

    async def aclose(self) -> None:
        """Nothing to release; see :meth:`Provider.aclose`."""
        return None


class ScriptedProvider(FunctionProvider):
    """A provider that returns the given texts in order; raises :class:`ScriptExhaustedError` after."""

    def __init__(self, texts: Iterable[str], *, model: str = "test/scripted") -> None:
        self._texts = list(texts)
        self._next = 0
        super().__init__(self._answer, model=model)

    def _answer(self, request: ChatRequest) -> str:
        if self._next >= len(self._texts):
            raise ScriptExhaustedError(f"scripted provider ran out after {len(self._texts)} answers")
        self._next += 1
        return self._texts[self._next - 1]

    @property
    def unconsumed(self) -> list[str]:
        """Scripted answers not yet returned."""
        return self._texts[self._next :]
