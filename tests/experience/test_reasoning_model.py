"""ReasoningExperienceModel: DreamEnv episodes end to end, provenance, ablations, retries, cancellation."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
from anyio.lowlevel import checkpoint

from dreamgym_sdk import (
    DreamEnv,
    Event,
    EventBus,
    ExperienceModel,
    ExperienceRequest,
    ModelOutputError,
    ProviderError,
    Source,
    Task,
    Transition,
    TransitionRecorded,
)
from dreamgym_sdk.experience import ReasoningConfig, ReasoningExperienceModel
from dreamgym_sdk.providers import ChatRequest, ChatResponse, Usage
from dreamgym_sdk.replay import SearchHit
from dreamgym_sdk.testing import FunctionProvider, ScriptedProvider

TASK = Task(id="door", instruction="get out of the room", environment="house", initial_state="a locked room")


def answer(next_state: str, *, won: bool = False, reasoning: str = "because") -> str:
    return json.dumps(
        {"reasoning": reasoning, "next_state": next_state, "reward": float(won), "done": won, "success": won}
    )


def action_of(request: ChatRequest) -> str:
    return request.messages[1].content.split("## Action\n")[1].split("\n")[0]


def door_world(request: ChatRequest) -> str:
    """A scripted 'LLM': opening the door wins, anything else leaves the room as it is."""
    action = action_of(request)
    if action == "open door":
        return answer("outside, in the sun", won=True)
    if action.startswith("fly"):
        return answer("Invalid action: you cannot fly. a locked room")
    return answer(f"a locked room (you tried: {action})")


class FakeRetriever:
    def __init__(self, n: int = 3) -> None:
        self.calls: list[dict[str, Any]] = []
        self.hits = [
            SearchHit(
                Transition(
                    id=f"real-{i}",
                    task_id="other",
                    episode_id="r",
                    step=i,
                    environment="house",
                    state=f"real state {i}",
                    action="open window",
                    next_state="still inside",
                    reward=0.0,
                    source=Source.REAL,
                ),
                score=0.9 - i / 10,
            )
            for i in range(n)
        ]

    async def search(
        self,
        state: str,
        action: str,
        *,
        k: int = 4,
        environment: str | None = None,
        task_id: str | None = None,
        source: Source | None = Source.REAL,
    ) -> list[SearchHit]:
        self.calls.append(
            {"state": state, "action": action, "k": k, "environment": environment, "source": source}
        )
        return self.hits[:k]


def request_for(action: str = "look", seed: int | None = None) -> ExperienceRequest:
    return ExperienceRequest(
        task=TASK, state="a locked room", action=action, episode_id="e", step=0, seed=seed
    )


def test_is_an_experience_model() -> None:
    assert isinstance(ReasoningExperienceModel(FunctionProvider(door_world)), ExperienceModel)


async def test_dreamenv_episode_end_to_end() -> None:
    retriever = FakeRetriever()
    model = ReasoningExperienceModel(FunctionProvider(door_world, model="test/door"), retriever=retriever)
    bus = EventBus()
    recorded: list[Transition] = []
    async with bus, DreamEnv(model, bus=bus, max_steps=5) as env:
        sub = bus.subscribe(TransitionRecorded)
        obs, _ = await env.reset(task=TASK, seed=11)
        assert obs == "a locked room"
        first = await env.step("look")
        assert (first.reward, first.terminated, first.truncated) == (0.0, False, False)
        assert first.observation == "a locked room (you tried: look)"
        assert first.info["reasoning"] == "because"
        assert first.info["retrieved_ids"] == ["real-0", "real-1", "real-2"]
        assert first.info["attempts"] == 1
        invalid = await env.step("fly away")
        assert invalid.reward == 0.0 and invalid.observation.startswith("Invalid action")
        last = await env.step("open door")
        assert (last.reward, last.terminated, last.info["success"]) == (1.0, True, True)
        for _ in range(3):
            event = await sub.receive()
            assert isinstance(event, TransitionRecorded)
            recorded.append(event.transition)
    assert [t.action for t in recorded] == ["look", "fly away", "open door"]
    provenance = recorded[-1].provenance
    assert provenance.model == "test/door" and provenance.prompt_version == "exp-v1"
    assert provenance.retrieved_ids == ("real-0", "real-1", "real-2")
    assert retriever.calls[0] == {
        "state": "a locked room", "action": "look", "k": 4, "environment": "house", "source": Source.REAL,
    }  # fmt: skip
    assert env.episode is not None and env.episode.success


async def test_history_reaches_the_prompt() -> None:
    provider = FunctionProvider(door_world)
    async with DreamEnv(ReasoningExperienceModel(provider)) as env:
        await env.reset(task=TASK)
        await env.step("look")
        await env.step("knock")
    assert "## History" not in provider.requests[0].messages[1].content
    second = provider.requests[1].messages[1].content
    assert "## History" in second and "Action: look" in second


async def test_provenance_sums_tokens_and_cost_over_retries() -> None:
    responses = iter(
        [
            ChatResponse(
                text="not json", model="m", usage=Usage(prompt_tokens=100, completion_tokens=5, cost_usd=0.01)
            ),
            ChatResponse(
                text=answer("s"),
                model="m",
                usage=Usage(prompt_tokens=120, completion_tokens=30, cost_usd=0.02),
                cached=True,
            ),
        ]
    )
    model = ReasoningExperienceModel(FunctionProvider(lambda _: next(responses), model="test/usage"))
    prediction = await model.predict(request_for())
    p = prediction.provenance
    assert (p.prompt_tokens, p.completion_tokens) == (220, 35)
    assert p.cost_usd == pytest.approx(0.03)
    assert p.cached is True and p.latency_s >= 0.0 and p.model == "test/usage"
    assert p.retrieved_ids == ()
    assert prediction.info["attempts"] == 2


async def test_unknown_cost_stays_unknown() -> None:
    model = ReasoningExperienceModel(FunctionProvider(lambda _: answer("s")))
    assert (await model.predict(request_for())).provenance.cost_usd is None


async def test_seed_and_schema_reach_the_provider() -> None:
    provider = FunctionProvider(door_world)
    await ReasoningExperienceModel(provider).predict(request_for(seed=42))
    chat = provider.requests[0]
    assert chat.seed == 42 and chat.temperature == 0.0 and chat.max_tokens == 1024
    assert chat.response_schema is not None and "reasoning" in chat.response_schema["properties"]
    plain = FunctionProvider(door_world)
    config = ReasoningConfig(structured_output=False, temperature=0.7, top_p=0.9)
    await ReasoningExperienceModel(plain, config=config).predict(request_for(seed=None))
    assert plain.requests[0].response_schema is None and plain.requests[0].seed is None
    assert (plain.requests[0].temperature, plain.requests[0].top_p) == (0.7, 0.9)


async def test_ablations() -> None:
    retriever = FakeRetriever()
    provider = FunctionProvider(lambda _: answer("s", reasoning="I should not be here"))
    config = ReasoningConfig(use_retrieval=False, use_reasoning=False)
    model = ReasoningExperienceModel(provider, retriever=retriever, config=config)
    prediction = await model.predict(request_for())
    assert retriever.calls == [], "retrieval off: the retriever is not even asked"
    assert prediction.output.reasoning == ""
    assert prediction.provenance.prompt_version == "exp-v1/no-retrieval,no-reasoning"
    assert provider.requests[0].response_schema is not None
    assert "reasoning" not in provider.requests[0].response_schema["properties"]
    assert "## Similar" not in provider.requests[0].messages[1].content


async def test_k_zero_skips_retrieval() -> None:
    retriever = FakeRetriever()
    model = ReasoningExperienceModel(
        FunctionProvider(door_world), retriever=retriever, config=ReasoningConfig(k=0)
    )
    assert (await model.predict(request_for())).provenance.retrieved_ids == ()
    assert retriever.calls == []


async def test_retry_with_feedback_then_success() -> None:
    provider = ScriptedProvider(["I think the door opens.", answer("outside", won=True)])
    prediction = await ReasoningExperienceModel(provider).predict(request_for("open door", seed=5))
    assert prediction.output.success and prediction.info["attempts"] == 2
    retry = provider.requests[1]
    assert [m.role for m in retry.messages] == ["system", "user", "assistant", "user"]
    assert retry.messages[2].content == "I think the door opens."
    assert "could not be used" in retry.messages[3].content and "no JSON object" in retry.messages[3].content
    assert retry.seed is not None and retry.seed != 5, "a retry must not replay the same cached answer"


async def test_retry_without_feedback_changes_only_the_seed() -> None:
    provider = ScriptedProvider(["garbage", answer("s")])
    config = ReasoningConfig(retry_with_feedback=False)
    await ReasoningExperienceModel(provider, config=config).predict(request_for(seed=5))
    first, second = provider.requests
    assert first.messages == second.messages and first.seed != second.seed


async def test_inconsistent_reward_is_retried_never_invented() -> None:
    inconsistent = json.dumps(
        {"reasoning": "r", "next_state": "s", "reward": 1, "done": False, "success": False}
    )
    provider = ScriptedProvider([inconsistent, answer("s")])
    prediction = await ReasoningExperienceModel(provider).predict(request_for())
    assert prediction.output.reward == 0.0 and prediction.info["attempts"] == 2
    assert "inconsistent" in provider.requests[1].messages[3].content


async def test_gives_up_with_typed_error_and_last_raw_text() -> None:
    provider = ScriptedProvider(["", "{'reasoning': 'r'", '{"reasoning": "r", "next_state": "s"}'])
    with pytest.raises(ModelOutputError) as info:
        await ReasoningExperienceModel(provider, config=ReasoningConfig(max_retries=2)).predict(request_for())
    assert info.value.attempts == 3
    assert info.value.raw_text == '{"reasoning": "r", "next_state": "s"}'
    assert "missing field" in str(info.value)
    assert provider.unconsumed == []


async def test_truncated_answer_is_retried_with_a_bigger_budget() -> None:
    calls: list[int | None] = []

    def truncating(request: ChatRequest) -> ChatResponse:
        calls.append(request.max_tokens)
        if len(calls) == 1:
            return ChatResponse(text='{"reasoning": "a very long', model="m", finish_reason="length")
        return ChatResponse(text=answer("s"), model="m", finish_reason="stop")

    config = ReasoningConfig(max_tokens=100)
    await ReasoningExperienceModel(FunctionProvider(truncating), config=config).predict(request_for())
    assert calls == [100, 200]


async def test_truncation_budget_is_capped() -> None:
    calls: list[int | None] = []

    def always_cut(request: ChatRequest) -> ChatResponse:
        calls.append(request.max_tokens)
        return ChatResponse(text='{"reasoning": "a very long', model="m", finish_reason="length")

    config = ReasoningConfig(max_tokens=100, max_retries=4)
    with pytest.raises(ModelOutputError, match="cut off"):
        await ReasoningExperienceModel(FunctionProvider(always_cut), config=config).predict(request_for())
    assert calls == [100, 200, 400, 400, 400]


async def test_failed_step_records_nothing() -> None:
    bus = EventBus()
    model = ReasoningExperienceModel(ScriptedProvider(["nope", "nope", "nope"]))
    async with bus, DreamEnv(model, bus=bus) as env:
        sub = bus.subscribe(Event)
        await env.reset(task=TASK)
        with pytest.raises(ModelOutputError):
            await env.step("look")
        assert env.history == ()
        assert all(not isinstance(sub.receive_nowait(), TransitionRecorded) for _ in range(sub.stats.queued))


async def test_provider_errors_propagate() -> None:
    def broken(_: ChatRequest) -> str:
        raise ProviderError("server down")

    with pytest.raises(ProviderError):
        await ReasoningExperienceModel(FunctionProvider(broken)).predict(request_for())


async def test_cancellation_during_a_call_leaves_no_transition() -> None:
    entered, release = anyio.Event(), anyio.Event()

    async def slow(request: ChatRequest) -> str:
        entered.set()
        await release.wait()
        return door_world(request)

    bus = EventBus()
    async with bus, DreamEnv(ReasoningExperienceModel(FunctionProvider(slow)), bus=bus) as env:
        sub = bus.subscribe(TransitionRecorded)
        await env.reset(task=TASK)
        async with anyio.create_task_group() as group:
            group.start_soon(env.step, "look")
            await entered.wait()
            group.cancel_scope.cancel()
        assert env.history == ()
        assert sub.stats.queued == 0
        release.set()
        result = await env.step("open door")
        assert result.terminated and len(env.history) == 1 and env.history[0].step == 0


async def test_shared_by_concurrent_episodes() -> None:
    async def world(request: ChatRequest) -> str:
        await checkpoint()
        return door_world(request)

    model = ReasoningExperienceModel(FunctionProvider(world))
    results: list[bool] = []

    async def episode(i: int) -> None:
        async with DreamEnv(model) as env:
            await env.reset(task=TASK, seed=i)
            await env.step(f"look {i}")
            results.append((await env.step("open door")).info["success"])

    async with anyio.create_task_group() as group:
        for i in range(32):
            group.start_soon(episode, i)
    assert results == [True] * 32


async def test_initial_state_uses_the_task_or_asks_the_model() -> None:
    provider = ScriptedProvider(['```json\n{"initial_state": "[1] button \\"Start\\""}\n```'])
    model = ReasoningExperienceModel(provider, retriever=FakeRetriever())
    assert await model.initial_state(TASK) == "a locked room"
    assert provider.requests == []
    blank = Task(instruction="open the shop", environment="shop", metadata={"items": 3})
    async with DreamEnv(model) as env:
        obs, _ = await env.reset(task=blank)
    assert obs == '[1] button "Start"'
    chat = provider.requests[0]
    assert "open the shop" in chat.messages[1].content and '"items": 3' in chat.messages[1].content
    assert "real state 0" in chat.messages[1].content
    assert chat.response_schema is not None and chat.schema_name == "initial_state"


async def test_initial_state_errors_after_retries() -> None:
    provider = ScriptedProvider(["no", '{"initial_state": ""}'])
    model = ReasoningExperienceModel(provider, config=ReasoningConfig(max_retries=1))
    with pytest.raises(ModelOutputError) as info:
        await model.initial_state(Task(instruction="x"))
    assert info.value.attempts == 2 and info.value.raw_text == '{"initial_state": ""}'


async def test_completions_are_not_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    secret = "SECRET-COMPLETION-TEXT"
    caplog.set_level(logging.DEBUG, logger="dreamgym_sdk")
    model = ReasoningExperienceModel(ScriptedProvider([secret, answer("s")]))
    await model.predict(request_for())
    assert caplog.records, "the unusable answer is logged (redacted)"
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert all(secret not in str(v) for v in vars(record).values())


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="k"):
        ReasoningConfig(k=-1)
    with pytest.raises(ValueError, match="nope"):
        ReasoningConfig(nope=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="reward_mode"):
        ReasoningConfig(reward_mode="sparse")  # type: ignore[arg-type]


async def test_sections_answers_need_no_json() -> None:
    sections = (
        "Reasoning: the door gives.\nNext state:\noutside\nin the sun\nReward: 1 | Done: true | Success: true"
    )
    provider = ScriptedProvider(["Next state: nowhere", sections])
    config = ReasoningConfig(answer_format="sections")
    prediction = await ReasoningExperienceModel(provider, config=config).predict(request_for("open door"))
    assert prediction.output.next_state == "outside\nin the sun"
    assert (prediction.output.reward, prediction.output.done, prediction.output.success) == (1.0, True, True)
    assert prediction.output.reasoning == "the door gives."
    assert prediction.info["attempts"] == 2 and prediction.info["repairs"] == []
    first, retry = provider.requests
    assert first.response_schema is None, "no JSON schema for a sections answer"
    assert "Reward: <number> | Done: <true|false>" in first.messages[0].content
    assert "sections" in retry.messages[-1].content and "Reward:" in retry.messages[-1].content
    assert prediction.provenance.prompt_version == "exp-v1/sections"


class TwoTaskRetriever(FakeRetriever):
    """Real transitions of two tasks; honours the ``task_id`` filter as a buffer does."""

    def __init__(self) -> None:
        super().__init__(0)
        self.hits = [
            SearchHit(
                Transition(
                    id=f"{task}-{i}", task_id=task, episode_id=task, step=i, environment="house",
                    state="s", action="open door", next_state="n", reward=0.0, source=Source.REAL,
                ),
                score=0.9 - i / 10 - (task == "door") / 2,
            )
            for task, count in (("other", 3), ("door", 2))
            for i in range(count)
        ] + [
            SearchHit(
                Transition(
                    id="door-kick", task_id="door", episode_id="door-2", step=0, environment="house",
                    state="s", action="Kick  door", next_state="n", reward=0.0, source=Source.REAL,
                ),
                score=0.1,
            )
        ]  # fmt: skip

    async def search(self, state: str, action: str, *, k: int = 4, task_id: str | None = None, **kw: Any):
        self.calls.append({"task_id": task_id, "k": k})
        hits = [h for h in self.hits if task_id is None or h.transition.task_id == task_id]
        return sorted(hits, key=lambda h: -h.score)[:k]


async def test_task_scoped_retrieval_prefers_the_tasks_own_transitions() -> None:
    async def retrieved(scope: str, task: Task, k: int, action: str = "open door") -> tuple[str, ...]:
        config = ReasoningConfig(retrieval_scope=scope, k=k)  # type: ignore[arg-type]
        model = ReasoningExperienceModel(
            FunctionProvider(door_world), retriever=TwoTaskRetriever(), config=config
        )
        request = ExperienceRequest(task=task, state="s", action=action, episode_id="e")
        return (await model.predict(request)).provenance.retrieved_ids

    assert await retrieved("environment", TASK, 2) == ("other-0", "other-1"), "the others are more similar"
    assert await retrieved("task", TASK, 2) == ("door-0", "door-1")
    assert await retrieved("task", TASK, 4) == ("door-0", "door-1", "door-kick", "other-0"), "topped up"
    variation = Task(instruction="get out faster", environment="house", parent_id="door")
    assert await retrieved("task", variation, 1) == ("door-0",), "a variation is grounded on its parent"
    # "action": the task's transition of the very action first, however far down the similarity ranking
    assert await retrieved("task", TASK, 1, "kick door") == ("door-0",)
    assert await retrieved("action", TASK, 1, "kick door") == ("door-kick",)
    assert await retrieved("action", TASK, 4, "kick door") == ("door-kick", "door-0", "door-1", "other-0")
    assert await retrieved("action", variation, 2) == ("door-0", "door-1")


async def test_exact_replay_answers_known_steps_from_the_buffer() -> None:
    from dreamgym_sdk.embeddings import HashingEmbedder
    from dreamgym_sdk.replay import InMemoryReplayBuffer

    task = Task(id="kitchen", instruction="cook", initial_state="kitchen; knife on table")
    known = Transition(
        task_id="kitchen", episode_id="e", step=0, state="kitchen; knife on table", action="dice carrot",
        reasoning="the recipe wants it sliced", next_state="You lost.", reward=0.0, terminated=True,
        source=Source.REAL,
    )  # fmt: skip
    calls: list[ChatRequest] = []

    def llm(request: ChatRequest) -> str:
        calls.append(request)
        return answer("kitchen; carrot diced")

    async with InMemoryReplayBuffer(embedder=HashingEmbedder()) as buffer:
        await buffer.add([known])
        config = ReasoningConfig(exact_replay=True, retrieval_scope="action", k=1)
        model = ReasoningExperienceModel(FunctionProvider(llm), retriever=buffer, config=config)
        replayed = await model.predict(ExperienceRequest(task=task, state=known.state, action="Dice  carrot"))
        assert not calls  # the game's own answer, no model call
        assert (replayed.output.next_state, replayed.output.done, replayed.output.reward) == (
            "You lost.",
            True,
            0.0,
        )
        assert replayed.provenance.retrieved_ids == (known.id,) and replayed.info["exact_replay"]
        other = await model.predict(
            ExperienceRequest(task=task, state="kitchen; knife in hand", action="dice carrot")
        )
        assert len(calls) == 1 and other.output.next_state == "kitchen; carrot diced"  # unknown state: asked
        elsewhere = task.model_copy(update={"id": "other-kitchen"})
        await model.predict(ExperienceRequest(task=elsewhere, state=known.state, action="dice carrot"))
        assert len(calls) == 2  # another game's transition is only an example


async def test_outcome_checks_keep_only_the_grants_and_endings_sampled_answers_agree_on() -> None:
    """A grant the model is unsure of (a sampled answer denies it) is withdrawn and an ending most answers
    deny is dropped; a sure one stays, and steps that neither reward nor end cost no extra call."""
    task = Task(id="kitchen", instruction="cook", initial_state="kitchen")
    calls: list[ChatRequest] = []

    def llm(request: ChatRequest) -> str:
        calls.append(request)
        action, sampled = action_of(request), request.temperature > 0
        if action == "eat meal":  # sure: every answer wins
            return answer("full", won=True)
        if action == "eat onion":  # unsure: won greedily, lost by one sampled answer in two
            won = not sampled or (request.seed or 0) % 2 == 0
            return answer("full" if won else "still hungry", won=won)
        if action == "drop knife":  # ends the episode greedily only
            ending = {"reasoning": "r", "next_state": "k", "reward": 0, "done": not sampled, "success": False}
            return json.dumps(ending)
        return answer("kitchen")

    config = ReasoningConfig(outcome_checks=4, check_temperature=0.7, reward_mode="dense")
    model = ReasoningExperienceModel(FunctionProvider(llm), config=config)
    sure = await model.predict(ExperienceRequest(task=task, state="kitchen", action="eat meal"))
    assert (sure.output.reward, sure.output.done, sure.output.success) == (1.0, True, True)
    assert len(calls) == 5 and {c.temperature for c in calls[1:]} == {0.7}
    assert len({c.seed for c in calls[1:]}) == 4  # each check samples anew
    assert sure.info["outcome_checks"] == [(1.0, True)] * 4
    unsure = await model.predict(ExperienceRequest(task=task, state="kitchen", action="eat onion"))
    assert (unsure.output.reward, unsure.output.success) == (0.0, False)
    assert unsure.output.next_state == "still hungry"  # told by an answer that denies the win
    assert (0.0, False) in unsure.info["outcome_checks"]
    ending = await model.predict(ExperienceRequest(task=task, state="kitchen", action="drop knife"))
    assert not ending.output.done  # 1 of 5 answers ends it
    calls.clear()
    plain = await model.predict(ExperienceRequest(task=task, state="kitchen", action="look"))
    assert len(calls) == 1 and "outcome_checks" not in plain.info


async def test_outcome_checks_decide_the_same_way_whichever_answer_comes_back_first() -> None:
    """Two cautious answers tell different next states: the first check's (by seed order) is kept, not
    the one that happened to finish first."""
    from dreamgym_sdk.experience.base import derive_seed

    task = Task(id="kitchen", instruction="cook", initial_state="kitchen")
    first_check = derive_seed(7, "check", 0)

    async def llm(request: ChatRequest) -> str:
        if request.temperature == 0:
            return answer("full", won=True)
        if request.seed == first_check:
            await anyio.sleep(0.05)  # the first check finishes last
            return answer("hungry, first check")
        return answer("hungry, second check")

    model = ReasoningExperienceModel(FunctionProvider(llm), config=ReasoningConfig(outcome_checks=2))
    request = ExperienceRequest(task=task, state="kitchen", action="eat onion", seed=7)
    assert (await model.predict(request)).output.next_state == "hungry, first check"
