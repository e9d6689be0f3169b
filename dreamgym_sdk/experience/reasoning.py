"""The reasoning experience model: an LLM that reasons its way to the next state and reward.

For each step it retrieves the top-k most similar real transitions, renders the prompt with
:func:`~dreamgym_sdk.experience.prompts.build_messages`, asks the provider for the contract's JSON object
(reasoning first), and parses, repairs and validates the answer with
:func:`~dreamgym_sdk.experience.parsing.parse_experience_output`. An unusable answer is re-asked up to
``max_retries`` times, then :class:`~dreamgym_sdk.ModelOutputError` is raised with the last raw text:
nothing is ever invented, and since the model keeps no per-episode state, a cancelled or failed call
leaves nothing behind (``DreamEnv`` records a transition only after ``predict`` returns).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience.base import ExperienceOutput, ExperienceRequest, Prediction, derive_seed
from dreamgym_sdk.experience.parsing import (
    AnswerFormat,
    ParsedOutput,
    RewardMode,
    error_reason,
    extract_json,
    parse_experience_output,
)
from dreamgym_sdk.experience.prompts import (
    DEFAULT_TEMPLATE,
    PromptTemplate,
    build_initial_state_messages,
    build_messages,
    clip_text,
    experience_schema,
    prompt_version,
)
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider
from dreamgym_sdk.replay.base import Retriever, SearchHit
from dreamgym_sdk.types import Provenance, Source, Task, Transition

__all__ = [
    "ReasoningConfig",
    "ReasoningExperienceModel",
    "RetrievalScope",
    "same_action",
    "same_action_first",
]

_log = get_logger(__name__)
_MAX_TOKENS_GROWTH = 4
TASK_FETCH = 64
"""Transitions fetched for ``retrieval_scope="action"``: enough for every transition of one task."""


RetrievalScope = Literal["environment", "task", "action"]
"""Where grounding transitions come from: the whole environment; the task's own first; or the task's own
with the same action first, then the same verb, then the task's others."""


class ReasoningConfig(BaseModel):
    """Settings of :class:`ReasoningExperienceModel`. The defaults work offline and follow the paper."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    use_history: bool = True
    """Condition on the episode's earlier steps (ablation switch)."""
    use_retrieval: bool = True
    """Condition on the top-k retrieved transitions (ablation switch; needs a retriever)."""
    use_reasoning: bool = True
    """Ask for a reasoning trace before the next state (ablation switch). When off, the model is asked for
    the other fields only and every output's ``reasoning`` is ``""``."""
    k: int = Field(default=4, ge=0, le=64)
    """How many retrieved transitions to show."""
    retrieval_source: Source | None = Source.REAL
    """Which transitions to retrieve: real ones only (default), synthetic ones, or ``None`` for both."""
    retrieval_scope: RetrievalScope = "environment"
    """Where to look: the whole environment, or first the task's own transitions (a generated variation's
    parent task's), topped up from the environment. In a world whose rules differ per task (which
    ingredient a recipe needs), only the same task's transitions show its rules. ``"action"`` ranks the task's
    transitions of the request's very action first, then those of its verb: a small model copies an
    example's outcome far more reliably than it compares names (``take red apple`` beside an example of
    ``take carrot``)."""
    history_window: int = Field(default=8, ge=0)
    """Besides step 0, how many of the most recent steps the prompt shows."""
    history_max_chars: int = Field(default=12_000, ge=200)
    """Character budget of the rendered history (see ``render_history`` for what is dropped first)."""
    example_max_chars: int = Field(default=2_000, ge=100)
    """Each field of a retrieved example is clipped to this many characters."""
    reward_mode: RewardMode = "outcome"
    """``"outcome"``: 1 on the successful final step, else 0 (paper default). ``"dense"``: any reward in
    [0, 1]."""
    reward_tolerance: float = Field(default=1e-6, ge=0.0, le=0.01)
    """A reward this close to 0 or 1 (outcome) or to the range bounds (dense) is snapped; farther is an
    error."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; 0 makes the simulated world deterministic (and response caching effective)."""
    deterministic: bool = False
    """Replayable synthesis at any temperature: every request carries a seed, the episode's derived one or,
    for an unseeded episode, one derived from the request itself (task, step, state, action and the
    actions before it). The same task and actions then give the same transitions in every session on a
    backend that honours seeds (``hf:``, vLLM), and exactly the same with a response cache
    (``ProviderConfig.cache_dir``); different states still sample differently."""
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int = Field(default=1024, ge=16)
    """Completion budget; an answer cut off by it is retried with twice the budget (at most 4×)."""
    initial_state_max_tokens: int = Field(default=512, ge=16)
    """Completion budget of the initial-state request."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """How many times an unusable answer is re-asked before ``ModelOutputError`` (total attempts:
    ``1 + max_retries``)."""
    retry_with_feedback: bool = True
    """On a retry, show the model its unusable answer and the error (otherwise re-ask with another seed)."""
    answer_format: AnswerFormat = "json"
    """Ask for one JSON object, or for the plain ``sections`` retrieved examples are shown in (what small
    distilled models write most reliably; see :mod:`~dreamgym_sdk.experience.parsing`). Either is read."""
    structured_output: bool = True
    """Pass the JSON schema of the answer as ``response_schema`` (used by providers that support it; never
    with ``answer_format="sections"``)."""
    exact_replay: bool = False
    """Answer with the game's own outcome when a retrieved real transition of the same task has the very
    state and action asked about (a deterministic environment answers the same again), and ask the model
    only about what the data has never shown. Such steps record ``prompt_version`` ``"exact-replay"`` and
    the transition they copy in ``retrieved_ids``."""
    outcome_checks: int = Field(default=0, ge=0, le=16)
    """An answer that grants a reward or success, or ends the episode, is asked again this many times at
    ``check_temperature``, and the step is told by the least rewarding usable answer (so it succeeds only if
    every answer does), ending as most of the least rewarding answers do. A learned model's grants and
    endings are what a policy learns to exploit, and a small model's wrong ones are mostly unsure ones:
    this is the uncertainty penalty of model-based offline RL (as in MOPO), paid only on the few steps
    outcome rewards make decisive. ``StepResult.info["outcome_checks"]`` lists the checks'
    ``(reward, done)``."""
    check_temperature: float = Field(default=1.0, gt=0.0, le=2.0)
    """Sampling temperature of the outcome checks."""
    template: PromptTemplate = DEFAULT_TEMPLATE
    """The prompt texts; their ``version`` is recorded in every transition's provenance."""


class ReasoningExperienceModel:
    """An :class:`~dreamgym_sdk.ExperienceModel` backed by an LLM provider, grounded by retrieval.

    ```python
    model = ReasoningExperienceModel(provider, retriever=buffer, config=ReasoningConfig(k=4))
    async with DreamEnv(model, max_steps=20) as env:
        obs, info = await env.reset(task="buy a red t-shirt under $20")
        obs, reward, terminated, truncated, info = await env.step('click [12]')
    ```

    Safe to share between concurrent episodes: it keeps no per-episode state.

    Args:
        provider: answers the chat requests (any :class:`~dreamgym_sdk.providers.Provider`).
        retriever: finds similar stored transitions for grounding; without one, no examples are shown.
        config: ablation switches, budgets, sampling and retry settings.
    """

    def __init__(
        self, provider: Provider, *, retriever: Retriever | None = None, config: ReasoningConfig | None = None
    ) -> None:
        self.provider = provider
        self.retriever = retriever
        self.config = config or ReasoningConfig()
        self.prompt_version = prompt_version(self.config)
        """The prompt version recorded in provenance (template version plus ablation switches)."""

    async def retrieve(self, request: ExperienceRequest) -> list[SearchHit]:
        """The grounding transitions for ``request`` (none when retrieval is off or there is no retriever)."""
        config = self.config
        if not config.use_retrieval or self.retriever is None or config.k == 0:
            return []
        task = request.task
        scoped = config.retrieval_scope != "environment"
        hits: list[SearchHit] = []
        if scoped:
            by_action = config.retrieval_scope == "action"
            hits = await self.retriever.search(
                request.state,
                request.action,
                # every transition of a task is a handful of episodes: fetch them all to find the action's
                k=max(config.k, TASK_FETCH) if by_action else config.k,
                environment=task.environment,
                task_id=task.parent_id or task.id,
                source=config.retrieval_source,
            )
            hits = (same_action_first(hits, request.action) if by_action else list(hits))[: config.k]
        if len(hits) < config.k:  # environment-wide, or a task without (enough) transitions of its own
            more = await self.retriever.search(
                request.state,
                request.action,
                k=config.k,
                environment=task.environment,
                source=config.retrieval_source,
            )
            seen = {h.transition.id for h in hits}
            hits += [h for h in more if h.transition.id not in seen][: config.k - len(hits)]
        return hits

    async def predict(self, request: ExperienceRequest) -> Prediction:
        """Synthesise the next state, reward and termination for ``request``.

        Raises:
            ModelOutputError: every attempt was unusable; carries the last raw text and the attempt count.
            ProviderError: the provider failed (after its own retries).
        """
        config = self.config
        hits = await self.retrieve(request)
        if config.exact_replay and (known := _same_step(request, hits)) is not None:
            return _replayed(known, config.reward_mode, config.use_reasoning)
        base = build_messages(request, hits, config)
        messages = base
        schema = (
            experience_schema(use_reasoning=config.use_reasoning)
            if config.structured_output and config.answer_format == "json"
            else None
        )
        calls: list[ChatResponse] = []
        elapsed = 0.0
        max_tokens = config.max_tokens
        last_error: ModelOutputError | None = None
        for attempt in range(config.max_retries + 1):
            chat = ChatRequest(
                messages=tuple(messages),
                temperature=config.temperature,
                top_p=config.top_p,
                max_tokens=max_tokens,
                seed=attempt_seed(self._seed(request), attempt),
                response_schema=schema,
                schema_name="experience_output",
            )
            started = time.perf_counter()
            response = await self.provider.complete(chat)
            elapsed += time.perf_counter() - started
            calls.append(response)
            try:
                parsed = self._parse(response)
            except ModelOutputError as exc:
                last_error = exc
                _log.debug(
                    "unusable experience output",
                    attempt=attempt + 1,
                    error=error_reason(exc),
                    raw_text=response.text,
                    episode_id=request.episode_id,
                    step=request.step,
                )
                if response.finish_reason == "length":
                    max_tokens = min(max_tokens * 2, config.max_tokens * _MAX_TOKENS_GROWTH)
                if config.retry_with_feedback:
                    messages = [*base, *self._feedback(response.text, exc)]
                continue
            info: dict[str, object] = {"attempts": len(calls), "repairs": list(parsed.repairs)}
            output = parsed.output
            if config.outcome_checks and (output.reward > 0 or output.success or output.done):
                started = time.perf_counter()
                checks = await self._check(chat.model_copy(update={"messages": tuple(base)}), request)
                elapsed += time.perf_counter() - started
                calls += [c for c, _ in checks]
                output = _checked(output, [o for _, o in checks if o is not None])
                info["outcome_checks"] = [None if o is None else (o.reward, o.done) for _, o in checks]
            provenance = calls_provenance(self.provider.model, self.prompt_version, hits, calls, elapsed)
            return Prediction(output, provenance, info)
        assert last_error is not None
        raise ModelOutputError(
            f"experience model output unusable: {error_reason(last_error)}",
            raw_text=last_error.raw_text,
            attempts=len(calls),
        )

    def _parse(self, response: ChatResponse) -> ParsedOutput:
        config = self.config
        return parse_experience_output(
            response.text,
            answer_format=config.answer_format,
            finish_reason=response.finish_reason,
            use_reasoning=config.use_reasoning,
            reward_mode=config.reward_mode,
            reward_tolerance=config.reward_tolerance,
        )

    async def _check(
        self, chat: ChatRequest, request: ExperienceRequest
    ) -> list[tuple[ChatResponse, ExperienceOutput | None]]:
        """``outcome_checks`` sampled answers to the first attempt's question, in seed order (``None``:
        unusable)."""
        seed = self._seed(request)
        checks: dict[int, tuple[ChatResponse, ExperienceOutput | None]] = {}

        async def ask(i: int) -> None:
            sampled = {"temperature": self.config.check_temperature, "seed": derive_seed(seed, "check", i)}
            response = await self.provider.complete(chat.model_copy(update=sampled))
            try:
                checks[i] = (response, self._parse(response).output)
            except ModelOutputError:
                checks[i] = (response, None)

        async with anyio.create_task_group() as tg:
            for i in range(self.config.outcome_checks):
                tg.start_soon(ask, i)
        return [checks[i] for i in sorted(checks)]

    def _seed(self, request: ExperienceRequest) -> int | None:
        """The request's seed; in deterministic mode an unseeded request gets one from its content."""
        if request.seed is not None or not self.config.deterministic:
            return request.seed
        past = tuple(t.action for t in request.history)
        return derive_seed(request.task.id, request.step, request.state, request.action, past)

    def _feedback(self, raw_text: str, error: ModelOutputError) -> list[ChatMessage]:
        template = self.config.template
        feedback = (
            template.retry_feedback_sections
            if self.config.answer_format == "sections"
            else template.retry_feedback
        )
        return [
            ChatMessage(role="assistant", content=clip_text(raw_text, 4_000) or "(empty answer)"),
            ChatMessage(role="user", content=feedback.replace("{error}", error_reason(error))),
        ]

    async def initial_state(self, task: Task) -> str:
        """The state an episode of ``task`` starts in.

        ``task.initial_state`` when set; otherwise the model is asked for a compact state from the task's
        instruction, environment and metadata (shown example states of the environment, when a retriever
        is set), answered as ``{"initial_state": "..."}`` and retried like :meth:`predict`.

        Raises:
            ModelOutputError: every attempt was unusable.
        """
        if task.initial_state is not None:
            return task.initial_state
        config = self.config
        examples: Sequence[SearchHit] = []
        if config.use_retrieval and self.retriever is not None and config.k:
            examples = await self.retriever.search(
                task.instruction, "", k=config.k, environment=task.environment, source=config.retrieval_source
            )
        base = build_initial_state_messages(task, config, examples)
        messages = list(base)
        schema = {
            "type": "object",
            "properties": {"initial_state": {"type": "string"}},
            "required": ["initial_state"],
            "additionalProperties": False,
        }
        last_error: ModelOutputError | None = None
        for attempt in range(config.max_retries + 1):
            response = await self.provider.complete(
                ChatRequest(
                    messages=tuple(messages),
                    temperature=config.temperature,
                    top_p=config.top_p,
                    max_tokens=config.initial_state_max_tokens,
                    seed=attempt_seed(
                        derive_seed(task.id, task.instruction) if config.deterministic else None, attempt
                    ),
                    response_schema=schema if config.structured_output else None,
                    schema_name="initial_state",
                )
            )
            try:
                value = extract_json(
                    response.text, prefer_keys=("initial_state",), finish_reason=response.finish_reason
                ).value.get("initial_state")
                if not isinstance(value, str) or not value.strip():
                    raise ModelOutputError(
                        "'initial_state' must be a non-empty string", raw_text=response.text
                    )
                return value
            except ModelOutputError as exc:
                last_error = exc
                if config.retry_with_feedback:
                    messages = [*base, *self._feedback(response.text, exc)]
        assert last_error is not None
        raise ModelOutputError(
            f"initial state output unusable: {error_reason(last_error)}",
            raw_text=last_error.raw_text,
            attempts=config.max_retries + 1,
        )


def _checked(output: ExperienceOutput, checks: Sequence[ExperienceOutput]) -> ExperienceOutput:
    """The least rewarding answer (unsuccessful before successful, then by reward; ``output`` first among
    equals), ending the episode if most of the least rewarding answers do: a whole answer, so its next
    state shows no score or item it was not granted."""
    answers = [output, *checks]
    lowest = min((a.success, a.reward) for a in answers)
    cautious = [a for a in answers if (a.success, a.reward) == lowest]
    done = 2 * sum(a.done for a in cautious) > len(cautious) or (
        2 * sum(a.done for a in cautious) == len(cautious) and cautious[0].done
    )
    return next(a for a in cautious if a.done == done)


def _same_step(request: ExperienceRequest, hits: Sequence[SearchHit]) -> Transition | None:
    """The retrieved real transition of the request's task with its very state and action, if any."""
    task_ids = {request.task.id, request.task.parent_id}
    for hit in hits:
        t = hit.transition
        if (
            t.source is Source.REAL
            and t.task_id in task_ids
            and t.state == request.state
            and same_action(t.action, request.action)
        ):
            return t
    return None


def _replayed(known: Transition, reward_mode: RewardMode, use_reasoning: bool) -> Prediction:
    """A real transition's outcome as the prediction (its reward in the model's reward mode)."""
    reward = (1.0 if known.success else 0.0) if reward_mode == "outcome" else min(max(known.reward, 0.0), 1.0)
    output = ExperienceOutput(
        reasoning=known.reasoning if use_reasoning else "",
        next_state=known.next_state,
        reward=reward,
        done=known.terminated,
        success=known.success,
    )
    provenance = Provenance(model="replay", prompt_version="exact-replay", retrieved_ids=(known.id,))
    return Prediction(output, provenance, {"attempts": 0, "exact_replay": True})


def same_action_first(hits: Sequence[SearchHit], action: str) -> list[SearchHit]:
    """``hits`` with those whose action is ``action`` (ignoring case and spacing) first, then those with its
    verb (first word: ``take banana`` for ``take knife``, the example that shows what a take of the other
    object is worth), each part in its original order."""
    wanted = _normalized(action)
    verb = wanted.split(" ", 1)[0]

    def rank(hit: SearchHit) -> int:
        theirs = _normalized(hit.transition.action)
        return 0 if theirs == wanted else 1 if theirs.split(" ", 1)[0] == verb else 2

    return sorted(hits, key=rank)


def same_action(a: str, b: str) -> bool:
    """Whether two actions are the same command (ignoring case and spacing)."""
    return _normalized(a) == _normalized(b)


def _normalized(action: str) -> str:
    return " ".join(action.lower().split())


def attempt_seed(seed: int | None, attempt: int) -> int | None:
    """The request's seed on the first attempt; a distinct, deterministic seed on each retry (also for an
    unseeded request: a cached temperature-0 answer must not come back on the retry)."""
    return seed if attempt == 0 else derive_seed(seed, "attempt", attempt)


def calls_provenance(
    model: str, version: str, hits: Sequence[SearchHit], calls: Sequence[ChatResponse], elapsed: float
) -> Provenance:
    """Provenance summed over every call of one step (retries included): tokens, wall time of the calls,
    cost (``None`` if any call's cost is unknown); ``cached`` tells whether the accepted answer came from a
    cache."""
    costs = [c.usage.cost_usd for c in calls]
    return Provenance(
        model=model,
        prompt_version=version,
        retrieved_ids=tuple(h.transition.id for h in hits),
        prompt_tokens=sum(c.usage.prompt_tokens for c in calls),
        completion_tokens=sum(c.usage.completion_tokens for c in calls),
        latency_s=elapsed,
        cost_usd=None if any(c is None for c in costs) else sum(c for c in costs if c is not None),
        cached=calls[-1].cached,
    )
