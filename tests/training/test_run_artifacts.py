"""``dreamgym train`` from the SDK's own artifacts: a distilled model's card is honoured, its buffer is read
with the card's embedder, TextWorld tasks list their admissible commands, tasks need initial states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dreamgym_sdk import ConfigError, ExperienceRequest, Source, Task, Transition
from dreamgym_sdk.distill import CARD_FILE, REPLAY_FILE, DatasetConfig, DistilledModelCard, TrainingSummary
from dreamgym_sdk.replay import InMemoryReplayBuffer
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.training.config_file import TrainConfig
from dreamgym_sdk.training.run import (
    admissible_for,
    dream_env_factory,
    open_experience_model,
    read_tasks,
    train,
)

KITCHEN = "location: kitchen\nobjects: table [on: knife]\ninventory: carrot (raw, uncut)"
TRAINED = DatasetConfig(
    k=1,
    history_window=1,
    reward_mode="dense",
    answer_format="sections",
    retrieval_scope="task",
    embedder="hashing",
)


def transition(i: int) -> Transition:
    return Transition(task_id="game", episode_id=f"e{i}", step=0, environment="textworld", state=KITCHEN,
                      action="take knife from table", next_state=f"{KITCHEN}\nknife taken {i}", reward=0.0,
                      source=Source.REAL)  # fmt: skip


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A distilled model's directory as far as ``train`` reads it before generating: the card and the
    stored transitions (the ``hf:`` provider loads weights only on the first request)."""
    directory = tmp_path / "experience-model"
    directory.mkdir()
    card = DistilledModelCard(dataset=TRAINED, training=TrainingSummary(examples=2))
    (directory / CARD_FILE).write_text(card.model_dump_json())
    (directory / REPLAY_FILE).write_text("".join(transition(i).model_dump_json() + "\n" for i in range(2)))
    return directory


def config(**tree: Any) -> TrainConfig:
    return TrainConfig.model_validate(tree)


async def test_a_distilled_model_is_asked_as_its_card_says(model_dir: Path) -> None:
    cfg = config(experience={"model": f"hf:{model_dir}", "reasoning": {"max_tokens": 99, "k": 1}})
    async with open_experience_model(cfg) as model:
        settings = model.config
        assert (settings.k, settings.history_window, settings.reward_mode) == (1, 1, "dense")
        assert (settings.answer_format, settings.retrieval_scope) == ("sections", "task")
        assert settings.max_tokens == 99  # a setting the card does not fix applies
        assert model.provider.model == f"hf:{await anyio.Path(model_dir).absolute()}"
        # no replay.uri: grounded on the stored transitions, embedded with the card's embedder
        assert isinstance(model.retriever, InMemoryReplayBuffer)
        hits = await model.retriever.search(KITCHEN, "take knife from table", k=4)
        assert len(hits) == 2


async def test_a_reasoning_setting_that_contradicts_the_card_is_an_error(model_dir: Path) -> None:
    cfg = config(experience={"model": str(model_dir), "reasoning": {"answer_format": "json"}})
    with pytest.raises(ConfigError, match=r"experience.reasoning.answer_format = 'json'.*'sections'"):
        async with open_experience_model(cfg):
            pass


async def test_other_model_strings_keep_the_configured_reasoning(tmp_path: Path) -> None:
    cfg = config(experience={"model": "openai/x", "api_base": "http://127.0.0.1:9", "reasoning": {"k": 3}})
    async with open_experience_model(cfg) as model:
        assert (model.config.k, model.config.answer_format, model.retriever) == (3, "json", None)


async def test_the_buffer_is_read_with_the_cards_embedder(model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("lancedb")
    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

    uri = str(tmp_path / "replay")
    async with LanceDBReplayBuffer(ReplayConfig(uri=uri, embedder="hashing")) as buffer:
        await buffer.add([transition(i) for i in range(3)])
    # replay.embedder is left at its default (minilm): the card's hashing embedder opens the table
    grounded = config(experience={"model": str(model_dir)}, replay={"uri": uri})
    async with open_experience_model(grounded) as model:
        assert isinstance(model.retriever, LanceDBReplayBuffer)
        assert len(await model.retriever.search(KITCHEN, "take knife from table", k=4)) == 3
    wrong = config(experience={"model": str(model_dir)}, replay={"uri": uri, "embedder": "minilm"})
    with pytest.raises(ConfigError, match=r"replay.embedder = 'minilm'.*\('hashing'\)"):
        async with open_experience_model(wrong):
            pass
    missing = config(experience={"model": str(model_dir)}, replay={"uri": str(tmp_path / "nowhere")})
    with pytest.raises(ConfigError, match=r"replay.uri: no replay buffer"):
        async with open_experience_model(missing):
            pass


def write_tasks(path: Path, tasks: list[Task]) -> Path:
    path.write_text("".join(t.model_dump_json() + "\n" for t in tasks))
    return path


async def test_tasks_without_initial_states_cannot_train_a_distilled_model(
    model_dir: Path, tmp_path: Path
) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [Task(id="a", instruction="cook", initial_state=KITCHEN),
                                                   Task(id="b", instruction="cook")])  # fmt: skip
    assert len(read_tasks(tasks)) == 2  # fine for a model that can imagine a state
    cfg = config(tasks=str(tasks), experience={"model": f"hf:{model_dir}"}, policy={"path": "unused"})
    with pytest.raises(ConfigError, match=r"1 of 2 task\(s\) have no initial_state \(first on line 2\)"):
        await train(cfg)  # before anything is loaded
    with pytest.raises(ConfigError, match=r"dreamgym collect tasks --games-from"):
        read_tasks(tasks, require_initial_state=True)


def tw_task(kind: str = "cooking") -> Task:
    return Task(id="g", instruction="cook", environment="textworld", initial_state=KITCHEN,
                metadata={"spec": {"kind": kind}})  # fmt: skip


def test_textworld_tasks_get_the_admissible_commands_of_their_kind() -> None:
    from dreamgym_sdk.integrations.textworld import admissible_commands

    cooking = admissible_for(tw_task())
    assert cooking is not None and list(cooking(KITCHEN)) == admissible_commands(KITCHEN)
    custom = admissible_for(tw_task("custom"))
    assert custom is not None and list(custom(KITCHEN)) == admissible_commands(KITCHEN, kind="custom")
    assert admissible_for(Task(instruction="cook")) is None
    assert admissible_for("cook") is None


async def test_the_synthetic_env_lists_admissible_commands_for_textworld_tasks_only() -> None:
    def world(request: ExperienceRequest) -> dict[str, object]:
        return {"next_state": KITCHEN, "reward": 0.0, "done": False, "success": False}

    make = dream_env_factory(FunctionExperienceModel(world, initial_state="a room"), 5)
    env: Any = make(0)
    async with env:
        _, info = await env.reset(task=tw_task())
        assert "take knife from table" in info["admissible_commands"]
        step = await env.step("take knife from table")
        assert "take knife from table" in step.info["admissible_commands"]
        _, info = await env.reset(task=Task(instruction="leave"))
        assert "admissible_commands" not in info


def test_the_success_reward_is_for_grpo_only() -> None:
    from dreamgym_sdk.training.config_file import load_train_config

    assert load_train_config(None, {"reward": "success"}).reward == "success"
    with pytest.raises(ConfigError, match=r"reward='success' applies to GRPO only"):
        load_train_config(None, {"algorithm": "ppo", "reward": "success"})
