"""Distillation of a tiny student: it trains in seconds, loads as ``hf:<dir>`` and answers in valid JSON."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from distill_helpers import needs_training

from dreamgym_sdk.distill import (
    CARD_FILE,
    DatasetConfig,
    DistillConfig,
    DistillDataset,
    StudentConfig,
    TrainingProgress,
    build_dataset,
    distill,
    open_experience_model,
    read_card,
    read_replay,
)
from dreamgym_sdk.distill.tiny import frequent_lines
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.experience.parsing import parse_experience_output
from dreamgym_sdk.providers import get_provider
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest
from dreamgym_sdk.types import Source, Task, Transition

pytestmark = needs_training

TASK = Task(id="door", instruction="get out of the room", environment="toy")
STEPS = [
    (
        "location: room\ndoor: locked\ninventory: key",
        "unlock door",
        "location: room\ndoor: closed\ninventory: key",
    ),
    (
        "location: room\ndoor: closed\ninventory: key",
        "open door",
        "location: room\ndoor: open\ninventory: key",
    ),
    ("location: room\ndoor: open\ninventory: key", "go out", "location: garden\ndoor: open\ninventory: key"),
]
# A tiny world, memorised: enough for a 0.3M-parameter model to answer in the contract's JSON.
CONFIG = DatasetConfig(k=0, history_window=0, embedder="hashing")
TRAINING = DistillConfig(
    max_steps=120, batch_size=3, learning_rate=5e-3, warmup_lm_steps=30, logging_steps=10, warmup_ratio=0.0,
    student=StudentConfig(vocab_size=400, hidden_size=64, layers=2, heads=4, max_positions=1024),
)  # fmt: skip


def _transitions() -> list[Transition]:
    return [
        Transition(
            task_id=TASK.id,
            episode_id="e",
            step=i,
            environment="toy",
            state=s,
            action=a,
            next_state=n,
            reasoning=f"'{a}' works here.",
            reward=1.0 if i == 2 else 0.0,
            terminated=i == 2,
            success=i == 2,
            source=Source.REAL,
        )
        for i, (s, a, n) in enumerate(STEPS)
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DistillDataset, list[TrainingProgress]]:
    out = tmp_path_factory.mktemp("distilled") / "model"
    reports: list[TrainingProgress] = []

    async def run() -> DistillDataset:
        dataset = await build_dataset(_transitions(), tasks={TASK.id: TASK}, config=CONFIG)
        await distill(dataset, out, config=TRAINING, dataset_config=CONFIG, on_progress=reports.append)
        return dataset

    return out, anyio.run(run), reports


def test_the_directory_holds_the_model_its_card_and_its_replay_data(
    trained: tuple[Path, DistillDataset, list[TrainingProgress]],
) -> None:
    out, dataset, reports = trained
    assert (
        (out / "config.json").is_file() and (out / "tokenizer.json").is_file() and (out / CARD_FILE).is_file()
    )
    assert not (out / "_trainer").exists()
    card = read_card(out)
    assert card is not None and card.dataset == CONFIG and card.base_model is None
    assert card.training.steps == 120 and card.training.lm_warmup_steps == 30 and card.training.examples == 3
    assert card.training.final_loss is not None and card.training.final_loss < 1.0
    assert read_replay(out) == dataset.replay
    assert [r.step for r in reports][-1] == 120 and all(r.total_steps == 120 for r in reports)


async def test_it_loads_as_hf_and_answers_in_valid_json(
    trained: tuple[Path, DistillDataset, list[TrainingProgress]],
) -> None:
    out, dataset, _ = trained
    provider = get_provider(f"hf:{out}", request_timeout=None)
    try:
        example = dataset.train[1]
        messages = tuple(ChatMessage(role=m["role"], content=m["content"]) for m in example.prompt)  # type: ignore[arg-type]
        response = await provider.complete(ChatRequest(messages=messages, temperature=0.0, max_tokens=160))
    finally:
        await provider.aclose()
    parsed = parse_experience_output(response.text).output  # raises unless it is the contract's JSON
    assert parsed.next_state == STEPS[1][2] and parsed.reward == 0 and parsed.done is False


async def test_open_experience_model_asks_with_the_cards_settings(
    trained: tuple[Path, DistillDataset, list[TrainingProgress]],
) -> None:
    out, _, _ = trained
    async with open_experience_model(out, max_tokens=160) as model:
        assert (
            model.config.k == 0 and model.config.history_window == 0 and model.config.reward_mode == "dense"
        )
        state, action, _ = STEPS[2]
        history = tuple(_transitions()[:2])  # as in training: the prompt shows step 0 of the history
        request = ExperienceRequest(task=TASK, state=state, action=action, history=history, step=2)
        prediction = await model.predict(request)
    assert prediction.output.done and prediction.output.success and prediction.output.reward == 1.0
    assert prediction.provenance.model == f"hf:{out.absolute()}"


def test_frequent_lines_become_phrase_tokens() -> None:
    texts = ["## Task\nsame instruction here\nunique one", "## Task\nsame instruction here\nunique two"]
    assert frequent_lines(texts, min_share=1.0, min_chars=8) == ["same instruction here"]
    assert json.dumps(frequent_lines(texts, min_share=0.5, min_chars=3)).count("unique") == 2


def test_a_stopped_distillation_writes_no_model(tmp_path: Path) -> None:
    """Ctrl-C during a long distillation: the run stops after the step in hand and leaves no card, so
    nothing takes the half-trained model for a finished one."""
    from dreamgym_sdk._stoppable import Stopped
    from dreamgym_sdk.distill.sft import distill_sync

    stop = threading.Event()
    stop.set()
    dataset = anyio.run(lambda: build_dataset(_transitions(), tasks={TASK.id: TASK}, config=CONFIG))
    with pytest.raises(Stopped):
        distill_sync(dataset, tmp_path / "model", config=TRAINING, dataset_config=CONFIG, stop=stop)
    assert read_card(tmp_path / "model") is None


async def test_a_seeded_episode_replays_identically_while_sampling(
    trained: tuple[Path, DistillDataset, list[TrainingProgress]],
) -> None:
    """Deterministic synthesis: sampling at temperature 1, the same seed and actions give the same
    transitions in every session (each step, and each retry, samples with a seed derived from the
    episode's), and another seed other ones. An answer too garbled to use is an outcome too."""
    from dreamgym_sdk import DreamEnv
    from dreamgym_sdk.errors import ModelOutputError

    out, _, _ = trained
    task = TASK.model_copy(update={"initial_state": STEPS[0][0]})

    async def play(model: Any, seed: int | None) -> list[tuple[str, float, bool]]:
        played: list[tuple[str, float, bool]] = []
        async with DreamEnv(model, max_steps=3) as env:
            await env.reset(task=task, seed=seed)
            for _, action, _ in STEPS:
                try:
                    step = await env.step(action)
                except ModelOutputError as exc:
                    played.append((exc.raw_text, -1.0, True))
                    break
                played.append((step.observation, step.reward, step.terminated))
                if step.terminated or step.truncated:
                    break
        return played

    async with open_experience_model(out, max_tokens=80, temperature=1.0, max_retries=1) as model:
        replays = [await play(model, seed=5) for _ in range(3)]
        others = [await play(model, seed=seed) for seed in (6, 7)]
        unseeded = [await play(model, seed=None) for _ in range(3)]
    assert replays[0] == replays[1] == replays[2]
    assert replays[0] not in others  # the samples do depend on the seed
    assert len({tuple(r) for r in unseeded}) > 1  # unseeded sampling differs from session to session...
    async with open_experience_model(
        out, max_tokens=80, temperature=1.0, max_retries=1, deterministic=True
    ) as model:
        fixed = [await play(model, seed=None) for _ in range(3)]
    assert fixed[0] == fixed[1] == fixed[2]  # ...unless the mode is deterministic
