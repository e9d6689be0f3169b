"""Reward sources: who decides a synthetic transition's reward, termination and success.

The transition model predicts the next state; a reward source decides what that step is worth:

- :class:`ModelReward`: the experience model's own answer (what a DreamEnv uses by default);
- :class:`RuleReward`: a function of the step (``request``, predicted ``output``), e.g. "the task is won
  when the state says *You win*";
- :class:`JudgeReward`: an LLM with a rubric, on any provider, its answers cached and its tokens and cost
  counted apart from the simulator's.

:func:`with_reward` puts a source behind any experience model; every transition it produces names the
source in ``provenance.reward_source``. An observation-only world model
(:class:`~dreamgym_sdk.experience.ObservationWorldModel`) needs one::

    model = with_reward(ObservationWorldModel(provider), RuleReward(won_when_said))
    env = DreamEnv(model)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceOutput, ExperienceRequest, Prediction
from dreamgym_sdk.experience.parsing import extract_json
from dreamgym_sdk.experience.prompts import clip_text
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, Provider, Usage
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "JudgeReward",
    "ModelReward",
    "RescoreReport",
    "RewardSource",
    "RewardVerdict",
    "RewardedExperienceModel",
    "RuleReward",
    "rescore",
    "with_reward",
]


@dataclass(frozen=True, slots=True)
class RewardVerdict:
    """What a reward source decided for one step."""

    reward: float
    done: bool
    success: bool = False


@runtime_checkable
class RewardSource(Protocol):
    """Decides the reward, termination and success of a predicted step."""

    @property
    def name(self) -> str:
        """Recorded in ``provenance.reward_source`` of every transition it decided."""
        ...

    async def score(self, request: ExperienceRequest, output: ExperienceOutput) -> RewardVerdict:
        """The verdict for ``request``'s action leading to ``output.next_state``."""
        ...


class ModelReward:
    """The experience model's own reward, termination and success."""

    name = "model"

    async def score(self, request: ExperienceRequest, output: ExperienceOutput) -> RewardVerdict:
        """``output``'s own values."""
        return RewardVerdict(output.reward, output.done, output.success)


Rule = Callable[[ExperienceRequest, ExperienceOutput], "RewardVerdict | Awaitable[RewardVerdict]"]


class RuleReward:
    """A rule: a (sync or async) function of the request and the predicted output returning a verdict.

    ```python
    def won_when_said(request, output):
        won = "you win" in output.next_state.lower()
        return RewardVerdict(reward=float(won), done=won, success=won)

    source = RuleReward(won_when_said)
    ```
    """

    def __init__(self, rule: Rule, *, name: str = "rule") -> None:
        self.rule = rule
        self.name = name

    async def score(self, request: ExperienceRequest, output: ExperienceOutput) -> RewardVerdict:
        """Apply the rule."""
        verdict = self.rule(request, output)
        return await verdict if inspect.isawaitable(verdict) else verdict


_JUDGE_SYSTEM = (
    "You judge one step of an agent's episode in an environment. Given the task, the state, the agent's "
    "action and the resulting state, decide the reward the step earns, whether the episode is over, and "
    "whether the task is accomplished, following the rubric. Answer with one JSON object: "
    '{"reasoning": "<one or two sentences>", "reward": <number in [0, 1]>, "done": <true|false>, '
    '"success": <true|false>}'
)
DEFAULT_RUBRIC = (
    "Reward 1 and done only when the resulting state shows the task accomplished; reward 0 otherwise. "
    "The episode is also over, without success, when the resulting state shows the task can no longer be "
    "accomplished."
)


class JudgeReward:
    """An LLM judge with a rubric (any provider). Answers are cached by the step's content, so replaying
    a step costs nothing; the judge's tokens and cost are counted in :attr:`usage`, apart from the
    simulator's.

    Args:
        provider: the judge's model.
        rubric: what earns reward, ends the episode and counts as success.
        max_retries: extra attempts when the judge's answer is not the JSON asked for.
        name: recorded in ``provenance.reward_source``.
    """

    def __init__(
        self, provider: Provider, *, rubric: str = DEFAULT_RUBRIC, max_retries: int = 2, name: str = "judge"
    ) -> None:
        self.provider = provider
        self.rubric = rubric
        self.max_retries = max_retries
        self.name = name
        self.usage = Usage()
        """Tokens and cost of every judge call so far."""
        self.calls = 0
        self._cache: dict[tuple[str, ...], RewardVerdict] = {}

    async def score(self, request: ExperienceRequest, output: ExperienceOutput) -> RewardVerdict:
        """The judge's verdict (from the cache when the same step was judged before)."""
        key = (request.task.instruction, request.state, request.action, output.next_state, self.rubric)
        if key in self._cache:
            return self._cache[key]
        messages = (
            ChatMessage(role="system", content=f"{_JUDGE_SYSTEM}\n\nRubric: {self.rubric}"),
            ChatMessage(role="user", content=_judge_prompt(request.task, request, output)),
        )
        text = ""
        for attempt in range(self.max_retries + 1):
            response = await self.provider.complete(
                ChatRequest(messages=messages, temperature=0.0, max_tokens=256, seed=attempt)
            )
            self.calls += 1
            self.usage = _add(self.usage, response.usage)
            text = response.text
            try:
                verdict = _parse_verdict(text)
            except (ModelOutputError, ValueError, TypeError):
                continue
            self._cache[key] = verdict
            return verdict
        raise ModelOutputError(
            "the reward judge's answer is not the JSON verdict asked for",
            raw_text=text,
            attempts=self.max_retries + 1,
        )


def _judge_prompt(task: Task, request: ExperienceRequest, output: ExperienceOutput) -> str:
    return (
        f"Task: {clip_text(task.instruction, 2_000)}\n\nState:\n{clip_text(request.state, 4_000)}\n\n"
        f"Action: {request.action}\n\nResulting state:\n{clip_text(output.next_state, 4_000)}"
    )


def _parse_verdict(text: str) -> RewardVerdict:
    data = extract_json(text, prefer_keys=("reward", "done")).value
    reward = float(data["reward"])
    if not 0.0 <= reward <= 1.0:
        raise ValueError(f"reward {reward} is outside [0, 1]")
    done, success = data["done"], data.get("success", False)
    if not isinstance(done, bool) or not isinstance(success, bool):
        raise TypeError("done and success must be booleans")
    return RewardVerdict(reward, done or success, success)


def _add(a: Usage, b: Usage) -> Usage:
    cost = None if a.cost_usd is None and b.cost_usd is None else (a.cost_usd or 0.0) + (b.cost_usd or 0.0)
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cost_usd=cost,
    )


class RewardedExperienceModel:
    """An experience model whose rewards come from ``reward``: it predicts the next state, the source
    decides reward, termination and success (see :func:`with_reward`)."""

    def __init__(self, model: ExperienceModel, reward: RewardSource) -> None:
        self.model = model
        self.reward = reward

    async def initial_state(self, task: Task) -> str:
        """The wrapped model's initial state."""
        return await self.model.initial_state(task)

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """The wrapped model's prediction, with the source's verdict and name."""
        prediction = await self.model.predict(request)
        verdict = await self.reward.score(request, prediction.output)
        output = prediction.output.model_copy(
            update={"reward": verdict.reward, "done": verdict.done, "success": verdict.success}
        )
        provenance = prediction.provenance.model_copy(update={"reward_source": self.reward.name})
        return Prediction(output, provenance, prediction.info)


def with_reward(model: ExperienceModel, reward: RewardSource) -> RewardedExperienceModel:
    """``model`` with its rewards decided by ``reward``; every transition names the source."""
    return RewardedExperienceModel(model, reward)


@dataclass(frozen=True, slots=True)
class RescoreReport:
    """What :func:`rescore` changed."""

    transitions: int
    rewards_changed: int
    """Transitions whose reward differs from the stored one."""
    endings_changed: int
    """Transitions whose termination or success differs."""
    mean_abs_change: float
    """Mean absolute reward change over all transitions."""
    max_abs_change: float


async def rescore(
    transitions: Sequence[Transition],
    source: RewardSource,
    *,
    tasks: Mapping[str, Task] | None = None,
    concurrency: int = 8,
) -> tuple[list[Transition], RescoreReport]:
    """Recompute the reward, termination and success of stored transitions with ``source``, from what they
    recorded (state, action, next state, reasoning and the episode's earlier steps): neither the policy nor
    the simulator runs again. Returns new transitions (same ids, ``provenance.reward_source`` set) in the
    input order, and what changed.

    Args:
        transitions: the stored transitions (episodes are regrouped by ``episode_id`` for the history).
        source: the reward source that decides now.
        tasks: task id → task, for the instruction a judge reads (unknown tasks get an empty one).
        concurrency: steps scored at once (matters for a judge).
    """
    episodes: dict[str, list[Transition]] = {}
    for t in transitions:
        episodes.setdefault(t.episode_id, []).append(t)
    known = tasks or {}
    out: list[Transition | None] = [None] * len(transitions)
    limit = anyio.Semaphore(concurrency)

    async def one(index: int, t: Transition) -> None:
        task = known.get(t.task_id) or Task(id=t.task_id, instruction="", environment=t.environment)
        history = tuple(h for h in episodes[t.episode_id] if h.step < t.step)
        request = ExperienceRequest(
            task=task, state=t.state, action=t.action, history=history, episode_id=t.episode_id, step=t.step
        )
        stored = ExperienceOutput.model_construct(
            reasoning=t.reasoning, next_state=t.next_state, reward=t.reward, done=t.done, success=t.success
        )
        async with limit:
            verdict = await source.score(request, stored)
        out[index] = t.model_copy(
            update={
                "reward": verdict.reward,
                "terminated": verdict.done,
                "truncated": t.truncated and not verdict.done,
                "success": verdict.success,
                "provenance": t.provenance.model_copy(update={"reward_source": source.name}),
            }
        )

    async with anyio.create_task_group() as tg:
        for index, t in enumerate(transitions):
            tg.start_soon(one, index, t)
    rescored = [t for t in out if t is not None]
    changes = [abs(new.reward - old.reward) for old, new in zip(transitions, rescored, strict=True)]
    report = RescoreReport(
        transitions=len(rescored),
        rewards_changed=sum(c > 0 for c in changes),
        endings_changed=sum(
            (old.terminated, old.success) != (new.terminated, new.success)
            for old, new in zip(transitions, rescored, strict=True)
        ),
        mean_abs_change=sum(changes) / len(changes) if changes else 0.0,
        max_abs_change=max(changes, default=0.0),
    )
    return rescored, report
