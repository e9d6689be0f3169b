"""Many concurrent WebSocket sessions over one shared experience model: correct, isolated episodes."""

from __future__ import annotations

import anyio
from serve_helpers import TOKEN_A, TOKEN_B, running, task

from dreamgym_sdk import EpisodeCompleted, EventBus, Overflow
from dreamgym_sdk.serve import Client

SESSIONS = 500


async def test_500_concurrent_websocket_sessions_run_isolated_episodes() -> None:
    bus = EventBus()
    completed = bus.subscribe(EpisodeCompleted, maxsize=SESSIONS, overflow=Overflow.ERROR)
    results: dict[int, list[str]] = {}

    async def play(i: int) -> None:
        length = 2 + i % 4
        async with Client(server.url, token=TOKEN_A if i % 2 else TOKEN_B) as env:
            obs, info = await env.reset(task=task(f"task-{i}", length), seed=i)
            seen = [obs]
            while True:
                result = await env.step(f"act-{i}-{len(seen) - 1}")
                seen.append(result.observation)
                if result.done:
                    break
            assert result.terminated and result.reward == 1.0
            episode = env.episode
            assert episode is not None and episode.id == info["episode_id"] and episode.success
            results[i] = seen

    with anyio.fail_after(60):
        async with running(bus=bus, max_sessions=SESSIONS) as server:
            async with anyio.create_task_group() as tg:
                for i in range(SESSIONS):
                    tg.start_soon(play, i)
            assert server.metrics.sessions_created == SESSIONS
            assert server.metrics.sessions_active == 0

    for i in range(SESSIONS):
        length = 2 + i % 4
        expected = [f"start:task-{i}"] + [f"task-{i}|{k}|act-{i}-{k}" for k in range(length)]
        assert results[i] == expected, f"session {i} saw another episode"
    server_episodes = [completed.receive_nowait().episode for _ in range(SESSIONS)]
    by_task = {e.task.instruction: e for e in server_episodes}
    assert len(by_task) == SESSIONS
    for i in range(SESSIONS):
        actions = [t.action for t in by_task[f"task-{i}"].transitions]
        assert actions == [f"act-{i}-{k}" for k in range(2 + i % 4)]
