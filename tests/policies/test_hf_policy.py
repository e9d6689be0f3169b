"""HFPolicy on a tiny model built in the test session: recorded samples, batching, transcripts,
constrained decoding, seeding and loading weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("torch", reason="HFPolicy needs the hf extra (torch)")
pytest.importorskip("transformers", reason="HFPolicy needs the hf extra (transformers)")

import torch

from dreamgym_sdk import DreamEnv, Task, Transition
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig
from dreamgym_sdk.rollout import run_episode
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.training.sequences import build_episode_sequence
from dreamgym_sdk.types import Action, Sample, sample_of

ACTIONS = ["open door", "take key", "go north", "eat apple"]
TASK = Task(instruction="leave the room", id="leave")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    corpus = [*ACTIONS, "a room with a door", "outside", "Task: leave the room"]
    return build_tiny_model(
        tmp_path_factory.mktemp("hfpolicy") / "m", corpus * 5, hidden=32, layers=1, heads=2
    )


def make(path: Path, **options: Any) -> HFPolicy:
    return HFPolicy.from_pretrained(path, HFPolicyConfig(max_new_tokens=6, **options))


def info(episode: str = "ep", admissible: list[str] | None = None) -> dict[str, Any]:
    return {"episode_id": episode, "admissible_commands": admissible if admissible is not None else ACTIONS}


def reference_logprobs(policy: HFPolicy, prompt: list[int], completion: list[int]) -> list[float]:
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits[0].float() / policy.config.temperature
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(prompt) - 1 + k, t]) for k, t in enumerate(completion)]


async def test_act_records_exactly_what_was_sampled(model_path: Path) -> None:
    policy = make(model_path, temperature=0.8)
    action = await policy.act(TASK, "a room with a door", [], info())
    sample = sample_of(action)
    assert isinstance(action, Action) and sample is not None
    assert action in ACTIONS  # free text snapped to an admissible action
    assert len(sample.logprobs) == len(sample.completion_ids) > 0
    assert sample.policy_version == 0 and sample.temperature == 0.8 and sample.model == str(model_path)
    expected = reference_logprobs(policy, list(sample.prompt_ids), list(sample.completion_ids))
    assert sample.logprobs == pytest.approx(expected, abs=1e-4)
    assert Sample.model_validate_json(sample.model_dump_json()) == sample


async def test_concurrent_acts_run_as_one_batch(model_path: Path) -> None:
    policy = make(model_path)
    results: dict[int, str] = {}

    async def one(i: int) -> None:
        results[i] = await policy.act(TASK, f"room {i}", [], info(f"ep{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(one, i)
    assert len(results) == 6
    assert policy.stats.batches == 1 and policy.stats.max_batch_size == 6 and policy.stats.requests == 6
    assert all(sample_of(action) is not None for action in results.values())


async def test_batch_size_is_capped(model_path: Path) -> None:
    policy = make(model_path, max_batch_size=2)
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(policy.act, TASK, "room", [], info(f"ep{i}"))
    assert policy.stats.requests == 5 and policy.stats.max_batch_size == 2


async def test_transcript_prompts_extend_each_other(model_path: Path) -> None:
    policy = make(model_path)

    def world(req: ExperienceRequest) -> dict[str, object]:
        return {"reasoning": "", "next_state": f"room after {req.step}", "reward": 0.0, "done": req.step == 2}

    env = DreamEnv(FunctionExperienceModel(world, initial_state="a room with a door"), max_steps=5)
    episode = await run_episode(env, policy, TASK)
    samples = [t.sample for t in episode.transitions if t.sample is not None]
    assert len(samples) == len(episode) == 3
    for step in (1, 2):
        before, now = samples[step - 1], samples[step]
        assert now.prompt_ids[: len(before.prompt_ids) + len(before.completion_ids)] == (
            before.prompt_ids + before.completion_ids
        )
    sequence = build_episode_sequence(samples)
    inserted = [t for t, m in zip(sequence.completion_ids, sequence.env_mask, strict=True) if m == 0]
    text = policy.tokenizer.decode(inserted)
    assert "room after 0" in text and "room after 1" in text and "room after 2" not in text


async def test_window_prompt_shows_recent_history(model_path: Path) -> None:
    policy = make(model_path, prompt_style="window", history_window=1)

    def world(req: ExperienceRequest) -> dict[str, object]:
        return {"reasoning": "", "next_state": f"state {req.step + 1}", "reward": 0.0, "done": req.step == 2}

    env = DreamEnv(FunctionExperienceModel(world, initial_state="state 0"), max_steps=5)
    episode = await run_episode(env, policy, TASK)
    last = episode.transitions[2].sample
    assert last is not None
    prompt = policy.tokenizer.decode(last.prompt_ids)
    assert "1 earlier step(s) omitted" in prompt and "Step 1: action:" in prompt and "state 2" in prompt


async def test_constrained_decoding_returns_admissible_token_paths(model_path: Path) -> None:
    policy = make(model_path, constrain_to_admissible=True, temperature=1.5)
    admissible = ["go north", "go south", "open door"]  # "go" is shared: the trie must branch
    seen: set[str] = set()
    for i in range(12):
        action = await policy.act(TASK, "room", [], info(f"e{i}", admissible))
        sample = sample_of(action)
        assert sample is not None and action in admissible
        expected = policy.tokenizer(action, add_special_tokens=False)["input_ids"] + [policy.eos_ids[0]]
        assert list(sample.completion_ids) == expected
        seen.add(action)
    assert len(seen) > 1


async def test_configured_actions_stand_in_for_missing_admissible_commands(model_path: Path) -> None:
    policy = make(model_path, constrain_to_admissible=True, actions=("open door", "wait"))
    action = await policy.act(TASK, "room", [], {"episode_id": "e"})
    assert action in ("open door", "wait")
    sample = sample_of(action)
    assert sample is not None and "Admissible actions: open door; wait" in policy.tokenizer.decode(
        sample.prompt_ids
    )


async def test_same_seed_same_actions(model_path: Path) -> None:
    async def play(policy: HFPolicy) -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for i in range(4):
            sample = sample_of(await policy.act(TASK, f"room {i}", [], info(f"e{i}")))
            assert sample is not None
            out.append(sample.completion_ids)
        return out

    assert await play(make(model_path, seed=3)) == await play(make(model_path, seed=3))


async def test_recording_can_be_off(model_path: Path) -> None:
    assert sample_of(await make(model_path).act(TASK, "room", [], {})) is not None  # no episode id needed
    quiet = await make(model_path, record_samples=False).act(TASK, "room", [], info())
    assert type(quiet) is str


def test_configs_saved_with_a_sample_ledger_still_load() -> None:
    assert HFPolicyConfig.model_validate({"max_recorded_episodes": 2}) == HFPolicyConfig()


async def test_greedy_decoding_ignores_the_seed(model_path: Path) -> None:
    a, b = make(model_path, temperature=0.0, seed=1), make(model_path, temperature=0.0, seed=2)
    xa, xb = await a.act(TASK, "room", [], info("x")), await b.act(TASK, "room", [], info("x"))
    assert xa == xb
    sa, sb = sample_of(xa), sample_of(xb)
    assert sa is not None and sb is not None and sa.completion_ids == sb.completion_ids


async def test_long_transcripts_fall_back_to_a_window_prompt(model_path: Path) -> None:
    policy = make(model_path, max_prompt_tokens=8)
    sample = sample_of(await policy.act(TASK, "a room with a door", [], info()))
    assert sample is not None and "Your action:" in policy.tokenizer.decode(sample.prompt_ids)


async def test_transcript_without_recorded_steps_is_rendered_from_the_history(model_path: Path) -> None:
    policy = make(model_path)
    history = [
        Transition(task_id=TASK.id, episode_id="old", step=0, state="start", action="take key",
                   next_state="holding a key", reward=0.0),
    ]  # fmt: skip
    ids = policy.prompt_ids(TASK, "holding a key", history, {"episode_id": "old"})
    text = policy.tokenizer.decode(ids)
    assert text.index("start") < text.index("take key") < text.index("holding a key")


def test_weights_move_between_copies_with_their_version(model_path: Path) -> None:
    trainer, copy = make(model_path), make(model_path)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.add_(0.25)
    trainer.version = 7
    copy.set_weights(trainer.get_weights(), version=trainer.version)
    assert copy.version == 7
    for a, b in zip(copy.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="do not fit this policy's model"):
        copy.set_weights({"not.a.weight": torch.zeros(1)}, version=8)
    assert copy.version == 7


def test_load_weights_updates_the_model_in_place(model_path: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_model

    policy, other = make(model_path), make(model_path)
    with torch.no_grad():
        for p in other.model.parameters():
            p.add_(0.5)
    save_model(other.model, str(tmp_path / "weights.safetensors"))
    model_before = policy.model
    policy.load_weights(tmp_path)
    assert policy.model is model_before and policy.version == 1
    for a, b in zip(policy.model.parameters(), other.model.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError):
        policy.load_weights(tmp_path / "missing")


async def test_constrained_log_probs_are_those_of_the_renormalised_distribution(model_path: Path) -> None:
    policy = make(model_path, constrain_to_admissible=True, temperature=1.0)
    admissible = ["go north", "go south", "open door"]
    action = await policy.act(TASK, "room", [], info("e", admissible))
    sample = sample_of(action)
    assert sample is not None and action in admissible
    ids = torch.tensor([[*sample.prompt_ids, *sample.completion_ids]])
    with torch.no_grad():
        logp = torch.log_softmax(policy.model(input_ids=ids).logits[0].float(), dim=-1)
    for k, (token, allowed) in enumerate(zip(sample.completion_ids, sample.allowed, strict=True)):
        row = logp[len(sample.prompt_ids) - 1 + k]
        expected = float(row[token] - torch.logsumexp(row[list(allowed)], dim=0))
        assert sample.logprobs[k] == pytest.approx(expected, abs=1e-5)
    # the probabilities of the admissible actions under what decoding drew from sum to 1
    total = 0.0
    for candidate in admissible:
        path = [*policy.tokenizer(candidate, add_special_tokens=False)["input_ids"], policy.eos_ids[0]]
        prefix, logprob = list(sample.prompt_ids), 0.0
        for token in path:
            with torch.no_grad():
                row = torch.log_softmax(policy.model(input_ids=torch.tensor([prefix])).logits[0, -1], dim=-1)
            options = {
                c[len(prefix) - len(sample.prompt_ids)]
                for c in (
                    [*policy.tokenizer(a, add_special_tokens=False)["input_ids"], policy.eos_ids[0]]
                    for a in admissible
                )
                if c[: len(prefix) - len(sample.prompt_ids)] == prefix[len(sample.prompt_ids) :]
            }
            logprob += float(row[token] - torch.logsumexp(row[sorted(options)], dim=0))
            prefix.append(token)
        total += float(torch.tensor(logprob).exp())
    assert total == pytest.approx(1.0, abs=1e-4)


async def test_a_saved_policy_acts_as_it_was_configured(model_path: Path, tmp_path: Path) -> None:
    from dreamgym_sdk.policies import saved_policy_config

    config = HFPolicyConfig(
        prompt_style="transcript", show_admissible=False, constrain_to_admissible=True, max_new_tokens=9
    )
    policy = HFPolicy.from_pretrained(model_path, config)
    assert saved_policy_config(model_path) is None  # a plain model directory carries no policy settings
    await anyio.to_thread.run_sync(policy.save_pretrained, tmp_path / "saved")
    assert saved_policy_config(tmp_path / "saved") == config
    loaded = HFPolicy.from_pretrained(tmp_path / "saved")
    assert loaded.config == config
    for a, b in zip(loaded.model.parameters(), policy.model.parameters(), strict=True):
        assert torch.equal(a, b)
    override = HFPolicyConfig(temperature=0.0)
    assert HFPolicy.from_pretrained(tmp_path / "saved", override).config == override
