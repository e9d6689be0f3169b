"""The trainer-backend protocol: how RL backends plug into the event loop."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from dreamgym_sdk.bus import EventBus, Overflow, Subscription
from dreamgym_sdk.events import EpisodeCompleted
from dreamgym_sdk.types import Episode

__all__ = ["TrainerBackend", "attach_trainer"]


@runtime_checkable
class TrainerBackend(Protocol):
    """An RL backend (GRPO, PPO, your own): it observes completed episodes and updates the policy.

    ``observe`` is called for every ``EpisodeCompleted`` on the bus, in order; ``update`` runs one policy
    update on what was observed and returns its metrics (``None`` when there is nothing to learn from).
    The training loop calls ``update`` and publishes ``PolicyUpdated``.
    """

    async def observe(self, episode: Episode) -> None:
        """Take in one completed episode (buffer it, group it by task, ...)."""
        ...

    async def update(self) -> dict[str, float] | None:
        """Run one policy update on the observed episodes; return its metrics."""
        ...


def attach_trainer(
    bus: EventBus, trainer: TrainerBackend, *, maxsize: int = 4096, overflow: Overflow = Overflow.BLOCK
) -> Subscription[EpisodeCompleted]:
    """Subscribe ``trainer.observe`` to every ``EpisodeCompleted`` on ``bus`` (which must be entered).

    The default ``block`` policy gives backpressure: rollouts slow down rather than drop episodes when
    the trainer falls behind.
    """

    async def observe(event: EpisodeCompleted) -> None:
        await trainer.observe(event.episode)

    return bus.subscribe(
        EpisodeCompleted, maxsize=maxsize, overflow=overflow, name=type(trainer).__name__, callback=observe
    )
