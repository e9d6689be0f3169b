"""A mini DreamGym loop: a tiny HFPolicy in a DreamEnv that rewards one target action, GRPO updates through
``attach_trainer`` on an EventBus, rollouts in groups. The policy learns to prefer the target."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("torch", reason="GRPOBackend needs the train extra (torch)")
pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")

import torch

from dreamgym_sdk import Task
from dreamgym_sdk.bus import EventBus
from dreamgym_sdk.events import PolicyUpdated
from dreamgym_sdk.policies.hf import HFPolicy
from dreamgym_sdk.training.base import attach_trainer
from dreamgym_sdk.training.config import GRPOBackendConfig
from dreamgym_sdk.training.grpo import GRPOBackend

PolicyFactory = Callable[..., Any]
Rollout = Callable[..., Any]
TARGET = "open door"
ACTIONS = ["open door", "take key", "go north", "eat apple"]  # as in conftest.py


def target_probability(policy: HFPolicy, task: Task) -> float:
    """Probability that the constrained policy picks the target at the first step of an episode: the
    product, along the target's tokens, of each token's probability renormalised over the tokens the
    admissible-action trie allows there (exactly how constrained decoding samples)."""
    prompt = policy.prompt_ids(task, "a room with a closed door", [], {})
    paths = [
        [*policy.tokenizer(a, add_special_tokens=False)["input_ids"], policy.eos_ids[0]] for a in ACTIONS
    ]
    target = paths[ACTIONS.index(TARGET)]
    probability = 1.0
    for k, token in enumerate(target):
        allowed = {p[k] for p in paths if len(p) > k and p[:k] == target[:k]}
        with torch.no_grad():
            logits = policy.model(input_ids=torch.tensor([prompt + target[:k]])).logits[0, -1].float()
        probs = torch.softmax(logits / policy.config.temperature, dim=-1)
        probability *= float(probs[token] / sum(probs[t] for t in allowed))
    return probability


async def test_grpo_updates_through_the_bus_raise_the_target_action(
    make_policy: PolicyFactory, rollout: Rollout, make_tasks: Callable[[int], list[Task]]
) -> None:
    policy = make_policy()
    backend = GRPOBackend(policy, GRPOBackendConfig(group_size=4, learning_rate=1e-2))
    tasks = make_tasks(2)
    before = target_probability(policy, tasks[0])
    updates: list[dict[str, float]] = []
    async with EventBus() as bus:
        trainer = attach_trainer(bus, backend)
        published = bus.subscribe(PolicyUpdated)
        for iteration in range(3):
            episodes = await rollout(policy, tasks, 4, bus=bus, seed=100 * iteration)
            assert len(episodes) == 8
            await bus.join()  # the backend has observed every episode
            metrics = await backend.update()
            if metrics is not None:
                updates.append(metrics)
                await bus.publish(PolicyUpdated(step=backend.updates, metrics=metrics))
        trainer.close()
        received = [published.receive_nowait() for _ in range(len(updates))]
        published.close()
    assert backend.updates == 3 and len(updates) == 3
    assert [e.metrics for e in received] == updates
    assert sum(m["optimizer_steps"] for m in updates) >= 1
    assert all(m["episodes"] == 8 for m in updates)
    assert target_probability(policy, tasks[0]) > before + 0.05
    backend.close()
