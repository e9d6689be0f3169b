"""GRPO learns from episodes a served agent played in another process: the agent's `Client` sends what its
policy sampled with each step, the server's transitions carry it onto the server's bus, and a trainer there
learns from them; the agent reloads the trainer's weights before each round. Without samples the trainer
refuses the episodes."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from serve_helpers import TOKEN_A, running

pytest.importorskip("trl", reason="GRPOBackend needs the train extra (trl)")

import torch
from safetensors.torch import save_model

from dreamgym_sdk import EpisodeCompleted, EventBus, UntrainableEpisodeError, attach_trainer
from dreamgym_sdk.testing.worlds import (
    KEY_AND_DOOR_WORLD,
    build_key_and_door_model,
    key_and_door_policy,
    success_rose,
)
from dreamgym_sdk.training import GRPOBackend, GRPOBackendConfig

PLAYER = Path(__file__).with_name("serve_player.py")


async def test_grpo_learns_from_a_served_agent_in_another_process(tmp_path: Path) -> None:
    model_dir = build_key_and_door_model(tmp_path / "tiny")
    trainer = key_and_door_policy(model_dir, seed=0)
    before = trainer.get_weights()
    config = GRPOBackendConfig(group_size=8, learning_rate=5e-3, beta=0.0, seed=0, max_policy_lag=0)
    backend = GRPOBackend(trainer, config)
    weights = tmp_path / "weights.safetensors"
    async with (
        EventBus() as bus,
        running(KEY_AND_DOOR_WORLD, bus=bus, max_steps=2) as server,
        await anyio.open_process(
            [sys.executable, str(PLAYER), server.url, TOKEN_A, str(model_dir)], stderr=None
        ) as agent,
    ):
        assert agent.stdin is not None and agent.stdout is not None
        answers = BufferedByteReceiveStream(agent.stdout)

        async def play(command: str) -> int:
            assert agent.stdin is not None
            await agent.stdin.send(command.encode() + b"\n")
            with anyio.fail_after(120):
                answer = (await answers.receive_until(b"\n", 1000)).decode()
            assert answer.startswith("done"), answer
            await bus.join()  # the server's episodes reached every subscriber
            return int(answer.split()[1])

        training = attach_trainer(bus, backend)
        curve: list[float] = []
        for update in range(18):
            save_model(trainer.model, str(weights))
            assert await play(f"play {weights} {trainer.version} {1000 + update} 1") == 64
            metrics = await backend.update()
            assert metrics is not None and metrics["episodes"] == 64 and metrics["policy_lag"] == 0.0
            curve.append(metrics["mean_reward"])  # the reward is 1 exactly for a success
        training.close()

        probe = bus.subscribe(EpisodeCompleted, maxsize=64)
        await play("play - 0 7 0")  # a policy that records no samples
        stripped = [probe.receive_nowait().episode for _ in range(64)]

    after = trainer.get_weights()
    assert not any(torch.equal(before[k], after[k]) for k in before if before[k].dim() > 1)
    assert success_rose(curve), f"GRPO did not learn from served episodes: {curve}"
    with pytest.raises(UntrainableEpisodeError, match="carry no Sample"):
        await GRPOBackend(trainer, config).observe(stripped[0])
