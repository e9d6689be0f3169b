"""Fidelity judge: robust parsing of verdicts, aggregation, context, failures, concurrency."""

from __future__ import annotations

import json

import pytest
from anyio.lowlevel import checkpoint

from dreamgym_sdk import ModelOutputError, ProviderError, Task, Transition
from dreamgym_sdk.experience import CRITERIA, FidelityJudge, FidelityReport, JudgeConfig, sample_transitions
from dreamgym_sdk.experience.judge import AGENTWORLD_CRITERIA, TransitionJudgement, parse_judgement
from dreamgym_sdk.providers import ChatRequest
from dreamgym_sdk.testing import FunctionProvider, ScriptedProvider


def transition(step: int, episode: str = "e1", **fields: object) -> Transition:
    data: dict[str, object] = {
        "id": f"{episode}-{step}", "task_id": "t1", "episode_id": episode, "step": step,
        "state": f"state {step}", "action": f"action {step}", "reasoning": f"why {step}",
        "next_state": f"state {step + 1}", "reward": 0.0, **fields,
    }  # fmt: skip
    return Transition.model_validate(data)


def verdict(c: int = 2, d: int = 1, i: int = 2, h: int = 0, rationale: str = "ok") -> str:
    return json.dumps(
        {
            "rationale": rationale,
            "causal_consistency": c,
            "diversity": d,
            "informativeness": i,
            "hallucination": h,
        }
    )


@pytest.mark.parametrize(
    "text",
    [
        verdict(),
        "Verdict:\n```json\n" + verdict() + "\n```",
        '{"rationale": "ok", "scores": {"causal_consistency": 2, "diversity": 1, "informativeness": 2, '
        '"hallucination": 0}}',
        '{"causal_consistency": {"score": 2}, "diversity": {"score": "1"}, "informativeness": 2.0, '
        '"hallucination": "0", "rationale": "ok"}',
        "{'rationale': 'ok', 'causal_consistency': 2, 'diversity': 1, 'informativeness': 2, "
        "'hallucination': 0,}",
    ],
)
def test_parse_judgement_variants(text: str) -> None:
    scores, rationale = parse_judgement(text)
    assert scores == {"causal_consistency": 2, "diversity": 1, "informativeness": 2, "hallucination": 0}
    assert rationale == "ok"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "great transition",
        verdict(c=3),
        verdict(d=-1),
        verdict().replace('"informativeness": 2', '"informativeness": 1.5'),
        verdict().replace('"hallucination": 0', '"hallucination": true'),
        '{"rationale": "ok", "causal_consistency": 2}',
    ],
)
def test_parse_judgement_errors(text: str) -> None:
    with pytest.raises(ModelOutputError) as info:
        parse_judgement(text)
    assert info.value.raw_text == text


async def test_judge_one_with_history_and_task() -> None:
    provider = ScriptedProvider([verdict(rationale="consistent")], model="test/judge")
    judge = FidelityJudge(provider)
    history = [transition(0), transition(1)]
    result = await judge.judge(transition(2), history=history, task=Task(id="t1", instruction="find the key"))
    assert result.ok and result.scores["causal_consistency"] == 2 and result.rationale == "consistent"
    user = provider.requests[0].messages[1].content
    assert "find the key" in user and "Step 0" in user and "Step 1" in user and "why 2" in user
    assert provider.requests[0].response_schema is not None


async def test_evaluate_aggregates_and_counts_failures() -> None:
    answers = {
        "e1-0": verdict(2, 2, 2, 2),
        "e1-1": verdict(1, 0, 2, 1),
        "e1-2": "unusable",
        "e2-0": verdict(0, 1, 1, 2),
    }

    async def judge_fn(request: ChatRequest) -> str:
        await checkpoint()
        step_line = request.messages[1].content.split("## Transition to judge (step ")[1]
        step = step_line.split(")")[0]
        episode = "e2" if "EPISODE-2" in request.messages[1].content else "e1"
        return answers[f"{episode}-{step}"]

    sample = [transition(0), transition(1), transition(2), transition(0, "e2", state="EPISODE-2")]
    report = await FidelityJudge(
        FunctionProvider(judge_fn, model="test/judge"), config=JudgeConfig(max_retries=0)
    ).evaluate(sample)
    assert (report.judged, report.failed, report.model) == (3, 1, "test/judge")
    assert report.means == pytest.approx(
        {"causal_consistency": 1.0, "diversity": 1.0, "informativeness": 5 / 3, "hallucination": 5 / 3}
    )
    assert report.overall == pytest.approx((1 + 1 + 5 / 3 + 5 / 3) / 4)
    assert report.counts["diversity"] == {"0": 1, "1": 1, "2": 1}
    assert [j.transition_id for j in report.judgements] == ["e1-0", "e1-1", "e1-2", "e2-0"]
    failed = report.judgements[2]
    assert not failed.ok and failed.error is not None and failed.scores == {}
    assert json.loads(report.model_dump_json())["counts"]["hallucination"]["2"] == 2


async def test_context_supplies_earlier_steps() -> None:
    provider = FunctionProvider(lambda _: verdict())
    context = [transition(i) for i in range(6)]
    await FidelityJudge(provider, config=JudgeConfig(history_steps=2)).evaluate([context[4]], context=context)
    user = provider.requests[0].messages[1].content
    assert "Step 2" in user and "Step 3" in user and "Step 1\n" not in user


async def test_concurrency_is_bounded() -> None:
    active = peak = 0

    async def judge_fn(request: ChatRequest) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(5):
            await checkpoint()
        active -= 1
        return verdict()

    sample = [transition(i, f"e{i}") for i in range(20)]
    report = await FidelityJudge(FunctionProvider(judge_fn), config=JudgeConfig(concurrency=3)).evaluate(
        sample
    )
    assert report.judged == 20 and 1 < peak <= 3


async def test_provider_errors_propagate_unwrapped() -> None:
    def broken(_: ChatRequest) -> str:
        raise ProviderError("down")

    with pytest.raises(ProviderError, match="down"):
        await FidelityJudge(FunctionProvider(broken)).evaluate([transition(0)])


async def test_judge_retries_then_raises() -> None:
    provider = ScriptedProvider(["no", "still no"])
    with pytest.raises(ModelOutputError) as info:
        await FidelityJudge(provider, config=JudgeConfig(max_retries=1)).judge(transition(0))
    assert info.value.attempts == 2 and info.value.raw_text == "still no"


def test_empty_report_and_sampling() -> None:
    report = FidelityReport.aggregate("m", [TransitionJudgement(transition_id="x", error="bad")])
    assert report.judged == 0 and report.failed == 1 and report.overall is None and report.means == {}
    assert set(report.counts) == set(CRITERIA)
    pool = [transition(i) for i in range(100)]
    assert sample_transitions(pool, 10, seed=1) == sample_transitions(pool, 10, seed=1)
    assert len({t.id for t in sample_transitions(pool, 10, seed=1)}) == 10
    assert sample_transitions(pool[:3], 10) == pool[:3]


async def test_the_agentworld_rubric_scores_five_dimensions() -> None:
    seen: list[ChatRequest] = []

    def judge_fn(request: ChatRequest) -> str:
        seen.append(request)
        scores = {"format": 2, "factuality": 1, "consistency": 2, "realism": 0, "quality": 1}
        return json.dumps({"rationale": "five dimensions", **scores})

    judge = FidelityJudge(
        FunctionProvider(judge_fn, model="test/judge"), config=JudgeConfig(rubric="agentworld")
    )
    report = await judge.evaluate([transition(0), transition(1)])
    assert report.means == {
        "format": 2.0,
        "factuality": 1.0,
        "consistency": 2.0,
        "realism": 0.0,
        "quality": 1.0,
    }
    assert report.overall == pytest.approx(1.2) and report.prompt_version == "agentworld-judge-v1"
    assert "factuality" in seen[0].messages[0].content
    schema = seen[0].response_schema
    assert schema is not None and schema["required"] == ["rationale", *AGENTWORLD_CRITERIA]
    with pytest.raises(ModelOutputError, match="'realism'"):
        parse_judgement(verdict(), criteria=AGENTWORLD_CRITERIA)  # the paper's answer misses them
