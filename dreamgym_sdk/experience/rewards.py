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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceOutput, ExperienceRequest, Prediction
from dreamgym_sdk.experience.parsing import extract_json
from dreamgym_sdk.experience.prompts import clip_text
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, Provider, Usage
from dreamgym_sdk.types import Task

__all__ = [
    "JudgeReward",
    "ModelReward",
    "RewardSource",
    "RewardVerdict",
    "RewardedExperienceModel",
    "RuleReward",
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
