"""Served episodes stored in the replay buffer (``ServeConfig.admission``, ``dreamgym serve --admit``)."""

from __future__ import annotations

from pathlib import Path

from serve_helpers import TOKEN_A

from dreamgym_sdk import Task
from dreamgym_sdk.grounding import ReplaySection
from dreamgym_sdk.replay import AdmissionPolicy, LanceDBReplayBuffer, ReplayConfig
from dreamgym_sdk.serve import Client, EchoExperienceModel, EnvServer, ServeConfig, admitting_episodes
from dreamgym_sdk.types import Source


async def test_completed_served_episodes_enter_the_buffer(tmp_path: Path) -> None:
    uri = str(tmp_path / "buffer")
    config = ServeConfig(
        port=0,
        tokens=(TOKEN_A,),
        max_steps=5,
        replay=ReplaySection(uri=uri, embedder="hashing"),
        admission=AdmissionPolicy(max_synthetic_share=1.0, max_per_episode=None),
    )
    async with admitting_episodes(config) as bus:
        assert bus is not None
        async with (
            EnvServer.for_model(EchoExperienceModel(), config, bus=bus) as server,
            Client(server.url, token=TOKEN_A) as env,
        ):
            await env.reset(task=Task(instruction="finish"))
            steps = [await env.step(a) for a in ("look", "wait", "done")]
            await env.reset(task=Task(instruction="unfinished"))
            await env.step("look")  # never ends: the policy stores finished episodes only
    assert steps[-1].terminated
    async with LanceDBReplayBuffer(ReplayConfig(uri=uri, embedder="hashing", read_only=True)) as buffer:
        stored = await buffer.sample(100)
    assert sorted(t.action for t in stored) == ["done", "look", "wait"]
    assert {t.source for t in stored} == {Source.SYNTHETIC}


async def test_admission_off_gives_no_bus() -> None:
    async with admitting_episodes(ServeConfig(tokens=(TOKEN_A,))) as bus:
        assert bus is None
