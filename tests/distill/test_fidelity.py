"""The fidelity evaluation runner: variants, histories, failures, the judge."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from dreamgym_sdk.distill import FidelityConfig, Reference, Variant, evaluate_fidelity
from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience import FidelityJudge
from dreamgym_sdk.experience.base import ExperienceModel, ExperienceRequest
from dreamgym_sdk.providers.base import ChatRequest
from dreamgym_sdk.testing import FunctionExperienceModel, FunctionProvider
from dreamgym_sdk.types import Source, Task, Transition


def _episode(task: str, episode: str) -> list[Reference]:
    steps = [("look", 0.0, False, True), ("fly", 0.0, False, False), ("win", 1.0, True, True)]
    refs: list[Reference] = []
    for i, (action, reward, done, admissible) in enumerate(steps):
        next_state = f"state {i}\nfeedback: no" if action == "fly" else f"state {i + 1}\nfeedback: ok"
        t = Transition(
            task_id=task, episode_id=episode, step=i, state=f"state {i}", action=action,
            next_state=next_state, reward=reward, terminated=done, success=done, source=Source.REAL,
        )  # fmt: skip
        refs.append(Reference(t, admissible))
    return refs


REFS = [*_episode("a", "e1"), *_episode("b", "e2")]
BY_KEY = {(r.transition.episode_id, r.transition.step): r.transition for r in REFS}
TASKS = {"a": Task(id="a", instruction="task a"), "b": Task(id="b", instruction="task b")}


def oracle(request: ExperienceRequest) -> dict[str, object]:
    t = BY_KEY[(request.episode_id, request.step)]
    assert [h.step for h in request.history] == list(range(request.step))  # the real history so far
    assert request.task.instruction == TASKS[t.task_id].instruction
    return {"reasoning": "known", "next_state": t.next_state, "reward": t.reward, "done": t.terminated,
            "success": t.success}  # fmt: skip


def lazy(request: ExperienceRequest) -> dict[str, object]:
    if request.action == "win":
        raise ModelOutputError("unusable", raw_text="???")
    return {"next_state": request.state + "\nfeedback: nothing happens", "reward": 0.0, "done": False}


async def test_variants_are_evaluated_in_one_run() -> None:
    opened: list[Variant] = []

    @contextlib.asynccontextmanager
    async def open_model(variant: Variant) -> AsyncIterator[ExperienceModel]:
        opened.append(variant)
        yield FunctionExperienceModel(oracle if variant == "full" else lazy)

    run = await evaluate_fidelity(
        REFS, open_model, model_name="test", tasks=TASKS,
        config=FidelityConfig(variants=("full", "no-retrieval")), replay_tasks={"b", "z"},
    )  # fmt: skip
    assert opened == ["full", "no-retrieval"]
    assert (run.references, run.episodes, run.tasks, run.overlapping_tasks) == (6, 2, 2, 1)
    full = run.by_variant()["full"].metrics
    assert (full.reward_accuracy, full.done_accuracy, full.next_state_exact, full.next_state_f1) == (
        1,
        1,
        1,
        1,
    )
    assert full.invalid_actions.count == 2 and full.invalid_actions.state_kept == 1.0
    lazy_metrics = run.by_variant()["no-retrieval"].metrics
    assert lazy_metrics.answered == 4  # the two "win" steps stayed unusable and count as wrong
    assert lazy_metrics.reward_accuracy == pytest.approx(4 / 6)
    assert lazy_metrics.invalid_actions.reward_zero == 1.0 and lazy_metrics.invalid_actions.state_kept == 1.0
    failed = [p for p in run.by_variant()["no-retrieval"].predictions if not p.answered]
    assert len(failed) == 2 and all(p.error for p in failed)
    json.loads(run.model_dump_json())  # serialisable


async def test_an_unknown_variant_is_refused() -> None:
    @contextlib.asynccontextmanager
    async def open_model(variant: Variant) -> AsyncIterator[ExperienceModel]:
        yield FunctionExperienceModel(oracle)

    with pytest.raises(ValueError, match="unknown variant"):
        await evaluate_fidelity(
            REFS, open_model, model_name="x", config=FidelityConfig.model_construct(variants=("bogus",))
        )


async def test_the_judge_scores_the_predicted_transitions() -> None:
    judged: list[ChatRequest] = []

    def judge_answer(request: ChatRequest) -> str:
        judged.append(request)
        return json.dumps({"rationale": "fine", "causal_consistency": 2, "diversity": 1, "informativeness": 2,
                           "hallucination": 2})  # fmt: skip

    @contextlib.asynccontextmanager
    async def open_model(variant: Variant) -> AsyncIterator[ExperienceModel]:
        yield FunctionExperienceModel(oracle)

    judge = FidelityJudge(FunctionProvider(judge_answer, model="test/judge"))
    run = await evaluate_fidelity(
        REFS, open_model, model_name="x", tasks=TASKS, judge=judge, config=FidelityConfig(judge_sample=3)
    )
    report = run.results[0].judge
    assert report is not None and report.judged == 3 and report.means["diversity"] == 1.0
    assert all("Simulator reasoning:\nknown" in r.messages[1].content for r in judged)
