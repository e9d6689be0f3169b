"""Behaviour cloning of HFPolicy: its sequences are the policy's own, token for token; cloning a few scripted
episodes makes a greedy policy replay them; the tiny policy model loads and encodes every action."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="behaviour cloning needs the hf extra (torch)")
pytest.importorskip("transformers", reason="behaviour cloning needs the hf extra (transformers)")

import torch

from dreamgym_sdk import DreamEnv, Episode, Task
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.experience.base import ExperienceRequest
from dreamgym_sdk.policies import (
    BCConfig,
    HFPolicy,
    HFPolicyConfig,
    TinyPolicyConfig,
    behaviour_clone,
    build_policy_model,
    demonstration,
)
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.rollout import run_episode
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedPolicy
from dreamgym_sdk.training.sequences import build_episode_sequence
from dreamgym_sdk.types import sample_of

# A tiny house: every task starts in the kitchen, so the first action depends on the task alone.
ROOMS = {
    "kitchen": "-= Kitchen =-\nYou are in a kitchen. A fridge stands in the corner.  A door leads north.\n",
    "fridge": "-= Kitchen =-\nThe fridge is open. Inside is a red apple.",
    "apple": "-= Kitchen =-\nYou are carrying: a red apple.",
    "hall": "-= Hall =-\nA long hall. A book lies on a shelf; the garden is east.",
    "book": "-= Hall =-\nYou are carrying: a book.",
    "garden": "-= Garden =-\nSunlight and flowers. *** You won ***",
    "ate": "You eat the red apple. Delicious! *** You won ***",
    "read": "You read the book: it is about apples. *** You won ***",
}
MOVES = {
    ("kitchen", "open fridge"): "fridge",
    ("fridge", "take red apple"): "apple",
    ("apple", "eat red apple"): "ate",
    ("kitchen", "go north"): "hall",
    ("hall", "go east"): "garden",
    ("hall", "take book"): "book",
    ("book", "read book"): "read",
    ("hall", "go south"): "kitchen",
}
ROUTES = {
    "eat": ["open fridge", "take red apple", "eat red apple"],
    "garden": ["go north", "go east"],
    "read": ["go north", "take book", "read book"],
}
TASKS = [
    Task(id="eat", instruction="Eat the red apple."),
    Task(id="garden", instruction="Go to the garden."),
    Task(id="read", instruction="Read the book."),
]
ACTIONS = sorted({action for _, action in MOVES} | {"look", "inventory"})
NAMES = {text: name for name, text in ROOMS.items()}


def world(req: ExperienceRequest) -> dict[str, object]:
    moved = MOVES.get((NAMES[req.state], req.action))
    won = moved is not None and req.action == ROUTES[req.task.id][-1]
    return {
        "reasoning": "",
        "next_state": ROOMS[moved] if moved else req.state,
        "reward": float(won),
        "done": won,
        "success": won,
    }


def env(admissible: Sequence[str] | None = None) -> DreamEnv:
    """The house; ``info`` lists ``admissible`` (every action by default) in every state."""
    listed = list(admissible) if admissible is not None else ACTIONS
    return DreamEnv(
        FunctionExperienceModel(world, initial_state=ROOMS["kitchen"]),
        max_steps=5,
        admissible=lambda _: listed,
    )


def corpus() -> list[str]:
    return [*(t.instruction for t in TASKS), *ROOMS.values(), *ACTIONS] * 4


SMALL = TinyPolicyConfig(vocab_size=400, hidden_size=64, layers=2, heads=4, max_positions=512)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_policy_model(tmp_path_factory.mktemp("bc") / "policy", corpus(), SMALL)


def config(**options: Any) -> HFPolicyConfig:
    return HFPolicyConfig(show_admissible=False, constrain_to_admissible=True, **options)


async def expert_episodes(repeats: int = 2) -> list[Episode]:
    return [
        await run_episode(env(), ScriptedPolicy(ROUTES[task.id]), task)
        for _ in range(repeats)
        for task in TASKS
    ]


def action_logprob(policy: HFPolicy, episodes: Sequence[Episode]) -> float:
    """Mean log-probability of the demonstrated action tokens under the policy's model."""
    total, count = 0.0, 0
    for episode in episodes:
        demo = demonstration(policy, episode)
        with torch.no_grad():
            logits = policy.model(input_ids=torch.tensor([demo.prompt_ids + demo.completion_ids])).logits
        logp = torch.log_softmax(logits[0].float(), dim=-1)
        offset = len(demo.prompt_ids) - 1
        for k, (token, trained) in enumerate(zip(demo.completion_ids, demo.env_mask, strict=True)):
            if trained:
                total += float(logp[offset + k, token])
                count += 1
    return total / count


async def replays(policy: Policy, task: Task) -> bool:
    episode = await run_episode(env(), policy, task)
    return [t.action for t in episode.transitions] == ROUTES[task.id]


class _Steered:
    """Runs ``policy`` with only the next scripted action admissible (decoding is constrained to it)."""

    def __init__(self, policy: HFPolicy, route: Any) -> None:
        self.policy, self.route = policy, route

    async def act(self, task: Task, observation: str, history: Any, info: Any) -> str:
        return await self.policy.act(
            task, observation, history, {**info, "admissible_commands": [next(self.route)]}
        )


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.id)
async def test_demonstration_is_what_act_records(model_path: Path, task: Task) -> None:
    policy = HFPolicy.from_pretrained(model_path, config(temperature=1.0))
    # Only the route's action is admissible in each state, so the constrained policy plays the route, while
    # info lists it: the prompts must still not depend on it.
    route = iter(ROUTES[task.id])
    episode = await run_episode(env(), _Steered(policy, route), task)
    assert [t.action for t in episode.transitions] == ROUTES[task.id]
    recorded = build_episode_sequence([t.sample for t in episode.transitions if t.sample is not None])

    demo = demonstration(policy, episode)

    assert demo.steps == demo.episode_steps == len(ROUTES[task.id])
    assert demo.prompt_ids == recorded.prompt_ids
    assert demo.completion_ids == recorded.completion_ids
    assert demo.env_mask == recorded.env_mask
    assert demo.action_tokens == recorded.policy_tokens


async def test_demonstration_is_cut_at_a_step_boundary(model_path: Path) -> None:
    policy = HFPolicy.from_pretrained(model_path, config())
    [episode] = [e for e in await expert_episodes(1) if e.task.id == "read"]
    full = demonstration(policy, episode)
    mask = full.env_mask
    ends = [k for k in range(len(mask)) if mask[k] and (k + 1 == len(mask) or not mask[k + 1])]
    two_steps = len(full.prompt_ids) + ends[1] + 1  # the tokens up to the end of the second action

    cut = demonstration(policy, episode, max_length=two_steps)

    assert demonstration(policy, episode, max_length=two_steps - 1).steps == 1
    assert (cut.steps, cut.episode_steps, len(cut)) == (2, 3, two_steps)
    assert cut.prompt_ids == full.prompt_ids
    assert cut.completion_ids == full.completion_ids[: len(cut.completion_ids)]
    assert cut.completion_ids[-1] == policy.eos_ids[0] and cut.env_mask[-1] == 1
    assert demonstration(policy, episode, max_length=len(full.prompt_ids)).steps == 0


async def test_behaviour_cloning_makes_a_greedy_policy_replay_the_demonstrations(
    model_path: Path, tmp_path: Path
) -> None:
    policy = HFPolicy.from_pretrained(model_path, config(temperature=1.0))
    episodes = await expert_episodes()
    greedy = HFPolicy(policy.model, policy.tokenizer, config(temperature=0.0))
    before = action_logprob(policy, episodes)
    assert not all([await replays(greedy, task) for task in TASKS])

    result = await behaviour_clone(
        policy, episodes, BCConfig(max_steps=100, batch_size=3, learning_rate=5e-3, progress=False)
    )

    after = action_logprob(policy, episodes)
    assert after > before + 3.0 and after > -0.5, (before, after)
    assert all([await replays(greedy, task) for task in TASKS])
    assert result.steps == 100 == policy.version
    assert result.episodes == len(episodes) and result.skipped == result.cut == 0
    assert sum(result.losses[-5:]) < 0.2 * sum(result.losses[:5])
    assert set(result.step_tokens) <= set(range(1, result.action_tokens + 1))
    assert result.action_tokens == sum(demonstration(policy, e).action_tokens for e in episodes)
    assert result.seconds > 0


async def test_epochs_set_the_number_of_steps(model_path: Path) -> None:
    policy = HFPolicy.from_pretrained(model_path, config())
    episodes = await expert_episodes()  # 6 episodes: 2 batches of 4 per epoch
    result = await behaviour_clone(policy, episodes, BCConfig(epochs=2, batch_size=4, progress=False))
    assert result.steps == 4 and sum(result.step_tokens) == 2 * result.action_tokens


async def test_policies_whose_prompts_cannot_be_rebuilt_are_refused(model_path: Path) -> None:
    episodes = await expert_episodes(1)
    refused = [
        HFPolicyConfig(show_admissible=True),
        HFPolicyConfig(show_admissible=False, prompt_style="window"),
    ]
    for refused_config in refused:
        policy = HFPolicy.from_pretrained(model_path, refused_config)
        with pytest.raises(ConfigError):
            await behaviour_clone(policy, episodes, BCConfig(max_steps=1, progress=False))
    policy = HFPolicy.from_pretrained(model_path, config())
    with pytest.raises(ConfigError, match="none of the"):
        await behaviour_clone(policy, episodes, BCConfig(max_steps=1, max_length=8, progress=False))
    assert policy.version == 0


async def test_show_admissible_false_leaves_the_list_out_of_the_prompt(model_path: Path) -> None:
    prompts: dict[bool, str] = {}
    for shown in (True, False):
        policy = HFPolicy.from_pretrained(model_path, HFPolicyConfig(show_admissible=shown, max_new_tokens=4))
        info = {"episode_id": "e", "admissible_commands": ["take book", "read book"]}
        sample = sample_of(await policy.act(TASKS[0], ROOMS["kitchen"], [], info))
        assert sample is not None
        prompts[shown] = policy.tokenizer.decode(sample.prompt_ids)
    assert "Admissible actions: take book; read book" in prompts[True]
    assert "Admissible actions" not in prompts[False] and "take book" not in prompts[False]
    assert ROOMS["kitchen"] in prompts[False]


def test_policy_model_loads_and_encodes_every_action(model_path: Path, tmp_path: Path) -> None:
    policy = HFPolicy.from_pretrained(model_path, config())
    tokenizer = policy.tokenizer
    for text in [*ACTIONS, *ROOMS.values()]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
        assert policy.eos_ids[0] not in ids
    assert policy.model.config.max_position_embeddings == SMALL.max_positions == tokenizer.model_max_length
    # the fixed prompt text is one token each
    system = tokenizer(policy.config.system_prompt, add_special_tokens=False)["input_ids"]
    assert len(system) == 1
    # seeded: the same corpus and config build the same files
    again = build_policy_model(tmp_path / "again", corpus(), SMALL)
    assert _digest(again) == _digest(model_path)
    assert _digest(
        build_policy_model(tmp_path / "other", corpus(), SMALL.model_copy(update={"seed": 1}))
    ) != (_digest(model_path))


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}
