"""The episodes a server's sessions complete, stored in its replay buffer (``ServeConfig.admission``)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator

import anyio

from dreamgym_sdk.bus import EventBus, Subscription
from dreamgym_sdk.events import EpisodeCompleted
from dreamgym_sdk.grounding import ExperienceSection, buffer_embedder, open_replay
from dreamgym_sdk.logging import get_logger
from dreamgym_sdk.replay.admission import AdmissionReport, admit_episodes
from dreamgym_sdk.serve.config import ServeConfig
from dreamgym_sdk.serve.models import ECHO_MODEL

__all__ = ["admitting_episodes"]

_log = get_logger("dreamgym_sdk.serve")


@contextlib.asynccontextmanager
async def admitting_episodes(config: ServeConfig) -> AsyncGenerator[EventBus | None]:
    """The bus the server's sessions publish to, with every completed episode admitted into
    ``config.replay``'s buffer under ``config.admission`` until the context exits (what was stored and
    what was skipped is logged then); ``None`` when admission is off.

    ```python
    async with admitting_episodes(config) as bus, open_experience_model(config) as model:
        async with EnvServer.for_model(model, config, bus=bus) as server:
            ...
    ```

    The buffer is opened with the embedder the experience model retrieves with (a distilled model's
    card's, else the table's own, else ``replay.embedder``), and created if missing.
    """
    if config.admission is None:
        yield None
        return
    uses_model = config.games is None and config.model != ECHO_MODEL
    embedder = buffer_embedder(ExperienceSection(model=config.model), config.replay) if uses_model else None
    report = AdmissionReport()
    async with contextlib.AsyncExitStack() as stack:
        buffer = await open_replay(stack, config.replay, embedder, read_only=False)

        async def admit(subscription: Subscription[EpisodeCompleted]) -> None:
            report.merge(await admit_episodes(buffer, subscription, config.admission))

        async with anyio.create_task_group() as tg, EventBus() as bus:
            tg.start_soon(admit, bus.subscribe(EpisodeCompleted, name="replay-admission"))
            yield bus
        _log.info("served episodes admitted", uri=config.replay.uri, **dataclasses.asdict(report))
