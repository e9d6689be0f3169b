"""SFT examples: the reasoning model's exact prompt, the contract's JSON target, splits by task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dreamgym_sdk.distill import (
    DatasetConfig,
    build_dataset,
    experience_target,
    read_examples,
    split_by_task,
    write_examples,
)
from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.errors import ConfigError, ModelOutputError
from dreamgym_sdk.experience import ReasoningExperienceModel
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.experience.parsing import parse_experience_output
from dreamgym_sdk.providers.base import ChatRequest
from dreamgym_sdk.replay import InMemoryReplayBuffer
from dreamgym_sdk.testing import FunctionProvider
from dreamgym_sdk.types import Source, Task, Transition

ANSWER = '{"reasoning": "r", "next_state": "s", "reward": 0, "done": false, "success": false}'


def _episode(task: str, episode: str, steps: int = 3) -> list[Transition]:
    out: list[Transition] = []
    for i in range(steps):
        last = i == steps - 1
        out.append(
            Transition(
                task_id=task,
                episode_id=episode,
                step=i,
                environment="toy",
                state=f"room of {task}, step {i}",
                action=f"push button {i}",
                reasoning=f"pushing button {i} in {task}",
                next_state=f"room of {task}, step {i + 1}",
                reward=1.0 if last else 0.0,
                terminated=last,
                success=last,
                source=Source.REAL,
            )
        )
    return out


TASKS = {f"task{i}": Task(id=f"task{i}", instruction=f"do thing {i}", environment="toy") for i in range(5)}
DATA = [t for i in range(5) for e in range(2) for t in _episode(f"task{i}", f"ep{i}{e}")]


def test_target_is_the_contract_json() -> None:
    t = DATA[2]
    text = experience_target(t, reward_mode="dense")
    assert list(json.loads(text)) == ["reasoning", "next_state", "reward", "done", "success"]
    parsed = parse_experience_output(text).output
    assert (parsed.reasoning, parsed.next_state, parsed.reward, parsed.done, parsed.success) == (
        t.reasoning, t.next_state, 1.0, True, True,
    )  # fmt: skip
    assert "reasoning" not in json.loads(experience_target(t, reward_mode="dense", use_reasoning=False))
    # done is the termination: a truncated step is not done.
    cut = t.model_copy(update={"terminated": False, "truncated": True, "reward": 0.0, "success": False})
    assert json.loads(experience_target(cut, reward_mode="dense"))["done"] is False
    # Outcome mode: a score rise that does not end the task is worth 0.
    rise = DATA[0].model_copy(update={"reward": 1.0})
    assert json.loads(experience_target(rise, reward_mode="outcome"))["reward"] == 0
    with pytest.raises(ModelOutputError):
        experience_target(DATA[0].model_copy(update={"reward": 3.0}), reward_mode="dense")


def test_split_never_shares_a_task() -> None:
    train, held = split_by_task(DATA, 0.4, seed=1)
    assert len({t.task_id for t in held}) == 2
    assert not {t.task_id for t in train} & {t.task_id for t in held}
    assert len(train) + len(held) == len(DATA)
    assert split_by_task(DATA, 0.4, seed=1) == (train, held)  # reproducible
    assert split_by_task(DATA, 0.0) == (DATA, [])


async def test_examples_are_the_reasoning_models_prompts() -> None:
    config = DatasetConfig(k=2, history_window=1, embedder="hashing", held_out_fraction=0.4, seed=1)
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    assert {e.task_id for e in dataset.train}.isdisjoint({e.task_id for e in dataset.valid})
    assert len(dataset.train) + len(dataset.valid) == len(DATA)
    assert dataset.replay == [t for t in DATA if t.task_id in dataset.train_tasks]

    # Retrieval never returns the example's own task (default ``exclude="task"``), nor its episode.
    by_id = {t.id: t for t in DATA}
    for e in dataset.train:
        assert len(e.retrieved_ids) == 2
        assert all(by_id[i].task_id != e.task_id for i in e.retrieved_ids)

    # A held-out example is exactly what ReasoningExperienceModel sends at that step.
    example = dataset.valid[4]
    t = by_id[example.transition_id]
    seen: list[ChatRequest] = []

    def answer(request: ChatRequest) -> str:
        seen.append(request)
        return ANSWER

    async with InMemoryReplayBuffer(embedder=HashingEmbedder()) as buffer:
        await buffer.add(dataset.replay)
        model = ReasoningExperienceModel(
            FunctionProvider(answer), retriever=buffer, config=config.reasoning_config()
        )
        history = tuple(h for h in DATA if h.episode_id == t.episode_id and h.step < t.step)
        await model.predict(
            ExperienceRequest(
                task=TASKS[t.task_id], state=t.state, action=t.action, history=history, step=t.step
            )
        )
    assert [{"role": m.role, "content": m.content} for m in seen[0].messages] == example.prompt
    assert example.completion == [{"role": "assistant", "content": experience_target(t, reward_mode="dense")}]
    assert (
        "## History" in example.prompt[1]["content"]
        and "## Similar transitions" in example.prompt[1]["content"]
    )


async def test_episode_exclusion_allows_other_episodes_of_the_same_task() -> None:
    config = DatasetConfig(k=3, embedder="hashing", exclude="episode")
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    by_id = {t.id: t for t in DATA}
    for e in dataset.train:
        assert all(by_id[i].episode_id != e.episode_id for i in e.retrieved_ids)
    assert any(by_id[i].task_id == e.task_id for e in dataset.train for i in e.retrieved_ids)


async def test_ablation_mix_builds_each_variants_prompt(tmp_path: Path) -> None:
    mix = {"full": 1.0, "no-history": 1.0, "no-retrieval": 1.0, "no-reasoning": 1.0}
    config = DatasetConfig(k=2, embedder="hashing", ablation_mix=mix)  # type: ignore[arg-type]
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    variants = {e.variant for e in dataset.train}
    assert variants == set(mix)
    for e in dataset.train:
        user = e.prompt[1]["content"]
        target = json.loads(e.completion[0]["content"])
        assert ("## Similar transitions" in user) == (e.variant != "no-retrieval")
        assert ("reasoning" in target) == (e.variant != "no-reasoning")
        if e.variant == "no-history":
            assert "## History" not in user
    write_examples(dataset.train, tmp_path / "sft.jsonl")
    assert read_examples(tmp_path / "sft.jsonl") == dataset.train
    # The same seed draws the same variants.
    again = await build_dataset(DATA, tasks=TASKS, config=config)
    assert [e.variant for e in again.train] == [e.variant for e in dataset.train]


async def test_inconsistent_targets_are_skipped_with_a_reason() -> None:
    bad = DATA[0].model_copy(update={"id": "bad", "reward": 5.0})
    dataset = await build_dataset([bad, *DATA[1:]], tasks=TASKS, config=DatasetConfig(k=0))
    assert "bad" in dataset.skipped and len(dataset.train) == len(DATA) - 1
    with pytest.raises(ConfigError):
        await build_dataset([t.model_copy(update={"source": Source.SYNTHETIC}) for t in DATA])


async def test_task_scoped_sections_examples() -> None:
    config = DatasetConfig(
        k=3, embedder="hashing", exclude="episode", retrieval_scope="task", answer_format="sections"
    )
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    by_id = {t.id: t for t in DATA}
    for e in dataset.train:
        own = [by_id[i].task_id == e.task_id for i in e.retrieved_ids]
        # the task's other episode (3 steps) first, then the environment: own examples are never outranked
        assert len(own) == 3 and own == sorted(own, reverse=True) and own[0]
        assert all(by_id[i].episode_id != e.episode_id for i in e.retrieved_ids)
        answer = e.completion[0]["content"]
        assert answer.startswith("Reasoning: ") and "\nNext state:\n" in answer
        assert answer == experience_target(
            by_id[e.transition_id], reward_mode="dense", answer_format="sections"
        )
        assert "Reward: <number> | Done:" in e.prompt[0]["content"]
    assert config.reasoning_config().retrieval_scope == "task"
    assert config.reasoning_config().answer_format == "sections"


async def test_action_scoped_examples_show_the_same_action_first() -> None:
    config = DatasetConfig(k=2, embedder="hashing", exclude="episode", retrieval_scope="action")
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    by_id = {t.id: t for t in DATA}
    for e in dataset.train:
        mine, first, second = by_id[e.transition_id], *(by_id[i] for i in e.retrieved_ids)
        # the task's other episode took the same action: that step is the first example, whatever its state
        assert (first.task_id, first.action) == (mine.task_id, mine.action)
        assert first.episode_id != mine.episode_id and second.task_id == mine.task_id
    assert config.reasoning_config().retrieval_scope == "action"


async def test_contrast_examples_show_another_action_of_the_task() -> None:
    config = DatasetConfig(
        k=2, embedder="hashing", exclude="episode", retrieval_scope="action", contrast_share=0.5, seed=3
    )
    dataset = await build_dataset(DATA, tasks=TASKS, config=config)
    by_id = {t.id: t for t in DATA}
    contrasted = 0
    for e in dataset.train:
        mine, first = by_id[e.transition_id], by_id[e.retrieved_ids[0]]
        assert first.task_id == mine.task_id  # the game's own transitions first, either way
        if first.action != mine.action:  # a contrast example: no example of its own action at all
            contrasted += 1
            assert all(
                by_id[i].action != mine.action for i in e.retrieved_ids if by_id[i].task_id == mine.task_id
            )
    assert 0 < contrasted < len(dataset.train)  # about half, drawn per transition
    again = await build_dataset(DATA, tasks=TASKS, config=config)
    assert [e.retrieved_ids for e in again.train] == [e.retrieved_ids for e in dataset.train]


def test_same_action_first_then_same_verb() -> None:
    from dreamgym_sdk.experience.reasoning import same_action_first
    from dreamgym_sdk.replay.base import SearchHit

    def hit(action: str) -> SearchHit:
        return SearchHit(transition=DATA[0].model_copy(update={"action": action}), score=0.5)

    hits = [hit("open fridge"), hit("take banana from counter"), hit("Take  knife from counter")]
    ranked = same_action_first(hits, "take knife from counter")
    assert [h.transition.action for h in ranked] == [
        "Take  knife from counter", "take banana from counter", "open fridge",
    ]  # fmt: skip
