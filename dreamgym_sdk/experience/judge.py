"""The fidelity judge: an LLM scores sampled synthetic transitions, as the paper evaluates its experience
model.

Each transition is scored 0, 1 or 2 (2 is best) on four criteria:

- ``causal_consistency``: the next state, reward and termination follow from the state and action;
- ``diversity``: the next state is specific and varied, not generic, templated or copied from earlier steps;
- ``informativeness``: the next state gives the agent what it needs to act next;
- ``hallucination``: nothing is invented, and an invalid or failed action gets explicit failure feedback
  (2 = no hallucination).

:meth:`FidelityJudge.evaluate` judges many transitions concurrently and aggregates them into a
:class:`FidelityReport` (mean and score counts per criterion). Any provider can judge.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.parsing import error_reason, extract_json
from dreamgym_sdk.experience.prompts import clip_text
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider
from dreamgym_sdk.types import Task, Transition

__all__ = [
    "AGENTWORLD_CRITERIA",
    "CRITERIA",
    "RUBRICS",
    "Criterion",
    "FidelityJudge",
    "FidelityReport",
    "JudgeConfig",
    "Rubric",
    "TransitionJudgement",
    "parse_judgement",
    "sample_transitions",
]

Criterion = Literal["causal_consistency", "diversity", "informativeness", "hallucination"]
CRITERIA: tuple[Criterion, ...] = ("causal_consistency", "diversity", "informativeness", "hallucination")
"""The criteria, in the order they are reported."""

_PROMPT_VERSION = "judge-v1"
_SYSTEM = (
    "You evaluate transitions produced by a simulated environment (a language-model world model) in which "
    "an agent is trained. A transition is: the state the agent saw, its action, the simulator's reasoning, "
    "and the next state, reward and termination the simulator produced. Score it on four criteria, each "
    "0, 1 or 2, where 2 is best:\n"
    "- causal_consistency: do the next state, reward, done and success follow logically from the state and "
    "the action? 2 = fully consistent; 1 = minor inconsistencies; 0 = contradicts the state or the action.\n"
    "- diversity: is the next state specific and varied, rather than generic, templated, or copied from "
    "earlier steps? 2 = specific and varied; 1 = partly repetitive; 0 = generic or copied.\n"
    "- informativeness: does the next state give the agent what it needs to act next (relevant elements, "
    "results, feedback)? 2 = informative; 1 = partly; 0 = uninformative.\n"
    "- hallucination: is the transition free of invented content, and does an invalid or failed action "
    "get explicit failure feedback? 2 = nothing invented and failures reported; 1 = minor issues; "
    "0 = invented elements or facts, or a failed action presented as a success.\n\n"
    "Answer with one JSON object and nothing else:\n"
    '{"rationale": "<a brief justification covering every criterion>", "causal_consistency": <0|1|2>, '
    '"diversity": <0|1|2>, "informativeness": <0|1|2>, "hallucination": <0|1|2>}'
)


AGENTWORLD_CRITERIA: tuple[str, ...] = ("format", "factuality", "consistency", "realism", "quality")
"""Qwen-AgentWorld's five dimensions (AgentWorldBench), in the order they are reported."""
_AGENTWORLD_SYSTEM = (
    "You evaluate the next observation a language world model predicted for an agent's action in a "
    "simulated environment. A transition is: the state the agent saw, its action, the simulator's "
    "reasoning, and the next state, reward and termination the simulator produced. Score the predicted "
    "next state on five dimensions, each 0, 1 or 2, where 2 is best:\n"
    "- format: does it keep the environment's observation format (layout, fields, labels)?\n"
    "- factuality: is it correct given the state and the action's semantics (no invented facts)?\n"
    "- consistency: does it agree with the earlier steps and with everything the state already showed?\n"
    "- realism: would the real environment plausibly answer this way, including for invalid actions?\n"
    "- quality: is it complete and specific enough for the agent to act on?\n\n"
    "Answer with one JSON object and nothing else:\n"
    '{"rationale": "<a brief justification covering every dimension>", "format": <0|1|2>, '
    '"factuality": <0|1|2>, "consistency": <0|1|2>, "realism": <0|1|2>, "quality": <0|1|2>}'
)


@dataclass(frozen=True, slots=True)
class Rubric:
    """What a :class:`FidelityJudge` scores: its criteria (each 0, 1 or 2) and the instructions."""

    name: str
    version: str
    """Recorded as the report's ``prompt_version``."""
    criteria: tuple[str, ...]
    system: str

    def schema(self) -> dict[str, Any]:
        """The JSON schema of an answer."""
        return {
            "type": "object",
            "properties": {
                "rationale": {"type": "string"},
                **{c: {"type": "integer", "enum": [0, 1, 2]} for c in self.criteria},
            },
            "required": ["rationale", *self.criteria],
            "additionalProperties": False,
        }


RUBRICS: dict[str, Rubric] = {
    "dreamgym": Rubric("dreamgym", _PROMPT_VERSION, CRITERIA, _SYSTEM),
    "agentworld": Rubric("agentworld", "agentworld-judge-v1", AGENTWORLD_CRITERIA, _AGENTWORLD_SYSTEM),
}
"""The rubrics by name: the DreamGym paper's four criteria, and Qwen-AgentWorld's five dimensions."""


class JudgeConfig(BaseModel):
    """Settings of :class:`FidelityJudge`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rubric: Literal["dreamgym", "agentworld"] = "dreamgym"
    """The DreamGym paper's four criteria, or Qwen-AgentWorld's five dimensions (format, factuality,
    consistency, realism, quality), each scored 0, 1 or 2."""

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=768, ge=32)
    max_retries: int = Field(default=2, ge=0, le=10)
    """Re-asks when the judge's answer is unusable."""
    concurrency: int = Field(default=8, ge=1)
    """How many transitions :meth:`FidelityJudge.evaluate` judges at once."""
    history_steps: int = Field(default=3, ge=0)
    """How many earlier steps of the same episode (from the context) the judge sees."""
    max_chars: int = Field(default=3_000, ge=100)
    """Each state shown to the judge is clipped to this many characters."""
    structured_output: bool = True
    """Pass the JSON schema of the answer as ``response_schema``."""


class TransitionJudgement(BaseModel):
    """The judge's verdict on one transition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transition_id: str
    scores: dict[str, int] = Field(default_factory=dict[str, int])
    """Criterion → 0, 1 or 2; empty when the judge's answer stayed unusable."""
    rationale: str = ""
    error: str | None = None
    """Why the transition could not be judged (the judge's answer stayed malformed), else ``None``."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the transition was judged."""
        return self.error is None


class FidelityReport(BaseModel):
    """Aggregate of many judgements."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """The judge's model string."""
    prompt_version: str = _PROMPT_VERSION
    judged: int
    """Transitions scored."""
    failed: int
    """Transitions the judge could not score."""
    means: dict[str, float]
    """Criterion → mean score over the judged transitions (0 to 2)."""
    overall: float | None
    """Mean of the criterion means; ``None`` when nothing was judged."""
    counts: dict[str, dict[str, int]]
    """Criterion → {"0": n, "1": n, "2": n}."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    """Total cost when every call's cost is known."""
    judgements: list[TransitionJudgement] = Field(default_factory=list[TransitionJudgement])

    @classmethod
    def aggregate(
        cls, model: str, judgements: Sequence[TransitionJudgement], *, rubric: Rubric | None = None
    ) -> FidelityReport:
        """Summarise ``judgements`` under ``rubric`` (default: the paper's; failed ones are counted, not
        averaged)."""
        rubric = rubric or RUBRICS["dreamgym"]
        criteria = rubric.criteria
        scored = [j for j in judgements if j.ok]
        means = {c: sum(j.scores[c] for j in scored) / len(scored) for c in criteria} if scored else {}
        counts = {
            c: {str(s): sum(1 for j in scored if j.scores[c] == s) for s in (0, 1, 2)} for c in criteria
        }
        costs = [j.cost_usd for j in judgements]
        return cls(
            model=model,
            prompt_version=rubric.version,
            judged=len(scored),
            failed=len(judgements) - len(scored),
            means=means,
            overall=sum(means.values()) / len(means) if means else None,
            counts=counts,
            prompt_tokens=sum(j.prompt_tokens for j in judgements),
            completion_tokens=sum(j.completion_tokens for j in judgements),
            cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
            judgements=list(judgements),
        )


def sample_transitions(
    transitions: Iterable[Transition], n: int, *, seed: int | None = 0
) -> list[Transition]:
    """``n`` transitions drawn uniformly without replacement (all of them if fewer), reproducibly."""
    pool = list(transitions)
    if n >= len(pool):
        return pool
    return random.Random(seed).sample(pool, n)


class FidelityJudge:
    """Scores synthetic transitions with an LLM judge (see the module docstring for the criteria).

    ```python
    judge = FidelityJudge(provider)
    report = await judge.evaluate(sample_transitions(transitions, 50), context=transitions)
    print(report.means, report.overall)
    ```

    Args:
        provider: the judge model (any provider; usually a strong hosted one).
        config: sampling, retries, concurrency and context settings.
    """

    def __init__(self, provider: Provider, *, config: JudgeConfig | None = None) -> None:
        self.provider = provider
        self.config = config or JudgeConfig()
        self.rubric = RUBRICS[self.config.rubric]
        """What is scored."""
        self.prompt_version = self.rubric.version

    def build_messages(
        self, transition: Transition, *, history: Sequence[Transition] = (), task: Task | None = None
    ) -> list[ChatMessage]:
        """The prompt judging ``transition`` (pure); ``history`` are earlier steps of its episode."""
        limit = self.config.max_chars
        sections: list[str] = []
        if task is not None:
            sections.append(f"## Task\n{task.instruction}")
        if history:
            steps = [
                f"Step {t.step}\nState:\n{clip_text(t.state, limit)}\nAction: {t.action}" for t in history
            ]
            sections.append("## Earlier steps\n" + "\n\n".join(steps))
        t = transition
        sections.append(
            f"## Transition to judge (step {t.step})\n"
            f"State:\n{clip_text(t.state, limit)}\n\n"
            f"Action: {t.action}\n\n"
            f"Simulator reasoning:\n{clip_text(t.reasoning, limit) or '(none)'}\n\n"
            f"Next state:\n{clip_text(t.next_state, limit)}\n\n"
            f"Reward: {t.reward:g} | Done: {str(t.done).lower()} | Success: {str(t.success).lower()}"
        )
        return [
            ChatMessage(role="system", content=self.rubric.system),
            ChatMessage(role="user", content="\n\n".join(sections)),
        ]

    async def judge(
        self, transition: Transition, *, history: Sequence[Transition] = (), task: Task | None = None
    ) -> TransitionJudgement:
        """Score one transition.

        Raises:
            ModelOutputError: the judge's answer stayed unusable after the retries.
        """
        config = self.config
        messages = self.build_messages(transition, history=history, task=task)
        calls: list[ChatResponse] = []
        last_error: ModelOutputError | None = None
        for _ in range(config.max_retries + 1):
            response = await self.provider.complete(
                ChatRequest(
                    messages=tuple(messages),
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    response_schema=self.rubric.schema() if config.structured_output else None,
                    schema_name="fidelity_judgement",
                )
            )
            calls.append(response)
            try:
                scores, rationale = parse_judgement(
                    response.text, finish_reason=response.finish_reason, criteria=self.rubric.criteria
                )
            except ModelOutputError as exc:
                last_error = exc
                continue
            costs = [c.usage.cost_usd for c in calls]
            return TransitionJudgement(
                transition_id=transition.id,
                scores={str(k): v for k, v in scores.items()},
                rationale=rationale,
                prompt_tokens=sum(c.usage.prompt_tokens for c in calls),
                completion_tokens=sum(c.usage.completion_tokens for c in calls),
                cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
            )
        assert last_error is not None
        raise ModelOutputError(
            f"judge output unusable: {error_reason(last_error)}",
            raw_text=last_error.raw_text,
            attempts=len(calls),
        )

    async def evaluate(
        self,
        transitions: Sequence[Transition],
        *,
        context: Iterable[Transition] = (),
        tasks: Mapping[str, Task] | None = None,
    ) -> FidelityReport:
        """Judge ``transitions`` concurrently (``config.concurrency`` at once) and aggregate the scores.

        A transition whose judgement stays malformed is reported as failed (with the error) rather than
        stopping the evaluation; provider errors propagate.

        Args:
            transitions: the sample to judge.
            context: transitions to take earlier steps of the same episode from (e.g. the whole set the
                sample was drawn from); the sample itself is always part of it.
            tasks: task id → task, to show the judge each transition's instruction.
        """
        by_episode: dict[str, dict[int, Transition]] = {}
        for t in [*context, *transitions]:
            by_episode.setdefault(t.episode_id, {})[t.step] = t
        results: list[TransitionJudgement | None] = [None] * len(transitions)
        limiter = anyio.CapacityLimiter(self.config.concurrency)
        window = self.config.history_steps

        async def one(index: int, transition: Transition) -> None:
            steps = by_episode.get(transition.episode_id, {})
            history = [
                steps[s] for s in range(max(transition.step - window, 0), transition.step) if s in steps
            ]
            task = tasks.get(transition.task_id) if tasks else None
            async with limiter:
                try:
                    results[index] = await self.judge(transition, history=history, task=task)
                except ModelOutputError as exc:
                    results[index] = TransitionJudgement(transition_id=transition.id, error=error_reason(exc))

        try:
            async with anyio.create_task_group() as group:
                for index, transition in enumerate(transitions):
                    group.start_soon(one, index, transition)
        except ExceptionGroup as errors:
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from errors
            raise
        judged = [r for r in results if r is not None]
        return FidelityReport.aggregate(self.provider.model, judged, rubric=self.rubric)


def parse_judgement(
    text: str, *, finish_reason: str | None = None, criteria: Sequence[str] = CRITERIA
) -> tuple[dict[str, int], str]:
    """The scores (of ``criteria``, by default the paper's) and rationale in a judge's answer.

    Scores may sit at the top level or under ``"scores"``, as integers, integral floats, numeric strings
    or ``{"score": n}`` objects; each must be 0, 1 or 2.

    Raises:
        ModelOutputError: no object, a missing criterion or a score outside {0, 1, 2}.
    """
    value = extract_json(text, prefer_keys=(*criteria, "scores"), finish_reason=finish_reason).value
    nested = value.get("scores")
    source: Mapping[str, Any] = cast(dict[str, Any], nested) if isinstance(nested, dict) else value
    scores: dict[str, int] = {}
    problems: list[str] = []
    for criterion in criteria:
        raw: Any = source.get(criterion)
        if isinstance(raw, dict):
            raw = cast(dict[str, Any], raw).get("score")
        score = _score(raw)
        if score is None:
            problems.append(f"{criterion!r} must be 0, 1 or 2, got {str(raw)[:20]!r}")
        else:
            scores[criterion] = score
    if problems:
        raise ModelOutputError("; ".join(problems), raw_text=text)
    rationale: Any = value.get("rationale", "")
    return scores, rationale if isinstance(rationale, str) else str(rationale)


def _score(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, int | float) and float(raw) in (0.0, 1.0, 2.0):
        return int(raw)
    return None
