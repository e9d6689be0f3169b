"""The admission policy for completed episodes, and admission straight from the event bus."""

from __future__ import annotations

import anyio
import pytest
from conftest import LanceFactory
from replay_helpers import transition

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, RolloutRunner
from dreamgym_sdk.embeddings import HashingEmbedder
from dreamgym_sdk.experience import ExperienceRequest
from dreamgym_sdk.replay import (
    AdmissionPolicy,
    AdmissionReport,
    EpisodeAdmitter,
    InMemoryReplayBuffer,
    admit_episodes,
)
from dreamgym_sdk.testing import FunctionExperienceModel, ScriptedPolicy
from dreamgym_sdk.types import Episode, Source, Task, Transition


def episode(name: str, steps: int, *, source: Source = Source.SYNTHETIC, done: bool = True) -> Episode:
    transitions = tuple(
        transition(
            hash((name, s)) % 10**6, episode=name, step=s, source=source,
            state=f"{name} state {s}", next_state=f"{name} state {s + 1}",
            terminated=done and s == steps - 1, reward=float(done and s == steps - 1),
        )
        for s in range(steps)
    )  # fmt: skip
    return Episode(
        task=Task(instruction=name), source=source, initial_state=f"{name} state 0", transitions=transitions
    )


@pytest.fixture
def memory(hashing: HashingEmbedder) -> InMemoryReplayBuffer:
    return InMemoryReplayBuffer(embedder=hashing)


async def test_real_episodes_are_stored_whole_and_synthetic_ones_capped(memory: InMemoryReplayBuffer) -> None:
    async with memory:
        admitter = EpisodeAdmitter(memory, AdmissionPolicy(max_synthetic_share=0.25, max_per_episode=None))
        report = await admitter.admit([episode("s1", 4)])
        assert (report.synthetic, report.skipped_cap) == (0, 4)  # no real data yet: no synthetic either
        report = await admitter.admit([episode("r1", 6, source=Source.REAL), episode("s2", 4)])
        assert report.real == 6
        assert report.synthetic == 2  # 2 / (6 + 2) = 0.25
        assert report.skipped_cap == 2
        assert await memory.count(source=Source.SYNTHETIC) == 2
        assert admitter.report.skipped_cap == 6


async def test_per_episode_limits_and_unfinished_episodes(memory: InMemoryReplayBuffer) -> None:
    async with memory:
        policy = AdmissionPolicy(max_synthetic_share=1.0, max_per_episode=3, min_steps=2)
        report = await EpisodeAdmitter(memory, policy).admit(
            [episode("long", 10), episode("short", 1), episode("open", 5, done=False)]
        )
        counts = (
            report.synthetic,
            report.skipped_per_episode,
            report.skipped_short,
            report.skipped_unfinished,
        )
        assert counts == (3, 7, 1, 5)
        kept = sorted((await memory.sample(10)), key=lambda t: t.step)
        assert [t.step for t in kept] == [0, 4, 9]  # evenly spread, and the final (rewarded) step
        assert kept[-1].terminated


async def test_duplicate_steps_are_skipped(memory: InMemoryReplayBuffer) -> None:
    async with memory:
        admitter = EpisodeAdmitter(memory, AdmissionPolicy(max_synthetic_share=1.0, max_per_episode=None))
        first = episode("dup", 3)
        copies = tuple(t.model_copy(update={"id": f"{t.id}-2", "reward": 0.5}) for t in first.transitions)
        twin = Episode(task=first.task, source=Source.SYNTHETIC, initial_state="s", transitions=copies)
        report = await admitter.admit([first, twin])
        assert (report.synthetic, report.skipped_duplicate) == (3, 3)
        assert (await admitter.admit([twin])).skipped_duplicate == 3


async def test_admission_from_the_bus_during_rollouts(make_lance: LanceFactory) -> None:
    def world(req: ExperienceRequest) -> dict[str, object]:
        done = req.step >= 2
        return {"next_state": f"{req.episode_id}: after {req.action} #{req.step}", "reward": float(done),
                "done": done, "success": done}  # fmt: skip

    model = FunctionExperienceModel(world, initial_state="start")
    async with make_lance() as buffer:
        await buffer.add([transition(i) for i in range(100)])  # real seed data
        policy = AdmissionPolicy(max_synthetic_share=0.5, max_per_episode=2)
        reports: list[AdmissionReport] = []
        episodes: list[Episode] = []
        async with EventBus() as bus:
            runner = RolloutRunner(
                lambda g: DreamEnv(model, max_steps=5),
                ScriptedPolicy(["look", "open door", "go north"]),
                bus=bus,
            )
            async with anyio.create_task_group() as tg:

                async def admit() -> None:
                    reports.append(await admit_episodes(buffer, bus, policy))

                tg.start_soon(admit)
                await anyio.wait_all_tasks_blocked()
                episodes += await runner.run([Task(instruction=f"task {i}") for i in range(40)], group_size=2)
                bus.close()
        assert len(episodes) == 80
        [report] = reports
        assert report.episodes == 80
        assert await buffer.count(source=Source.SYNTHETIC) == 100  # 80 x 2 = 160 offered, capped at 100
        assert report.skipped_cap == 60


async def test_the_admitter_is_a_bus_callback(memory: InMemoryReplayBuffer) -> None:
    async with memory:
        admitter = EpisodeAdmitter(memory, AdmissionPolicy(max_synthetic_share=1.0))
        async with EventBus() as bus:
            bus.subscribe(EpisodeCompleted, callback=admitter)
            await bus.publish(EpisodeCompleted(episode=episode("cb", 3)))
        assert await memory.count() == 3
        assert admitter.report.episodes == 1


async def test_admit_episodes_accepts_plain_and_async_iterables(memory: InMemoryReplayBuffer) -> None:
    async def stream() -> object:
        for i in range(5):
            yield episode(f"a{i}", 2, source=Source.REAL)

    async with memory:
        report = await admit_episodes(memory, [episode("p", 2, source=Source.REAL)])
        assert report.real == 2
        report = await admit_episodes(memory, stream(), batch_size=2)  # type: ignore[arg-type]
        assert report.real == 10
        stored: list[Transition] = [t async for b in memory.scan() for t in b]
        assert len(stored) == 12
