"""Which transitions of completed episodes enter the replay buffer: the admission policy.

Real episodes (recorded from a real environment through :class:`~dreamgym_sdk.RecordingEnv`) are stored
whole. Synthetic episodes pass the :class:`AdmissionPolicy`: finished episodes only, a minimum length, at
most a few transitions each, no duplicate steps, and a cap on the synthetic share of the buffer so real
data keeps its weight.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass, fields

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.bus import EventBus, Subscription
from dreamgym_sdk.events import EpisodeCompleted
from dreamgym_sdk.replay._records import content_hash
from dreamgym_sdk.replay.base import ReplayBuffer
from dreamgym_sdk.types import Episode, Source, Transition

__all__ = ["AdmissionPolicy", "AdmissionReport", "EpisodeAdmitter", "admit_episodes"]


class AdmissionPolicy(BaseModel):
    """Rules for storing the transitions of completed episodes.

    Applied in this order to each synthetic episode: ``require_done``, ``min_steps``,
    ``max_per_episode``, ``dedup``, then ``max_synthetic_share`` over the whole batch. Real episodes
    are stored whole (ids make re-adding idempotent); ``dedup_real`` also drops their duplicate steps.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_synthetic_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """After admission, synthetic transitions make up at most this share of the buffer. With ``0.5``,
    at most one synthetic transition per real one; ``1.0`` removes the cap; ``0.0`` admits none. The cap
    needs real data first: an empty buffer admits no synthetic transitions unless the share is 1."""
    min_steps: int = Field(default=1, ge=1)
    """Synthetic episodes shorter than this are skipped."""
    max_per_episode: int | None = Field(default=8, ge=1)
    """At most this many transitions of one synthetic episode: the final one (it carries the outcome
    reward) plus evenly spaced earlier ones. ``None``: all of them."""
    require_done: bool = True
    """Skip synthetic episodes that did not terminate or truncate."""
    dedup: bool = True
    """Skip synthetic transitions whose content hash (environment, state, action, next state) is already
    stored or repeats within the batch."""
    dedup_real: bool = False
    """Apply the same content dedup to real transitions."""


@dataclass(slots=True)
class AdmissionReport:
    """Counts of what admission did (cumulative on an :class:`EpisodeAdmitter`)."""

    episodes: int = 0
    """Episodes seen."""
    real: int = 0
    """Real transitions stored (or already present)."""
    synthetic: int = 0
    """Synthetic transitions stored (or already present)."""
    skipped_unfinished: int = 0
    """Synthetic transitions of episodes that had not ended."""
    skipped_short: int = 0
    """Synthetic transitions of episodes shorter than ``min_steps``."""
    skipped_per_episode: int = 0
    """Synthetic transitions beyond ``max_per_episode``."""
    skipped_duplicate: int = 0
    """Transitions whose content was already stored or repeated."""
    skipped_cap: int = 0
    """Synthetic transitions refused by ``max_synthetic_share``."""

    def merge(self, other: AdmissionReport) -> None:
        """Add ``other``'s counts to this report."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _spread(transitions: Sequence[Transition], limit: int) -> list[Transition]:
    """``limit`` transitions: the last one plus evenly spaced earlier ones, in order."""
    n = len(transitions)
    if n <= limit:
        return list(transitions)
    if limit == 1:
        return [transitions[-1]]
    picks = sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})  # spacing >= 1: all distinct
    return [transitions[i] for i in picks]


class EpisodeAdmitter:
    """Applies an :class:`AdmissionPolicy` and writes what passes to a replay buffer.

    Call :meth:`admit` with episodes, or pass the admitter as a bus callback::

        bus.subscribe(EpisodeCompleted, callback=EpisodeAdmitter(buffer))

    Args:
        buffer: where admitted transitions go.
        policy: the rules; defaults to :class:`AdmissionPolicy()`.
    """

    def __init__(self, buffer: ReplayBuffer, policy: AdmissionPolicy | None = None) -> None:
        self.buffer = buffer
        self.policy = policy or AdmissionPolicy()
        self.report = AdmissionReport()
        """Cumulative counts."""
        self._lock = anyio.Lock()  # count-then-add must not interleave, or the cap could be exceeded

    async def __call__(self, event: EpisodeCompleted) -> None:
        """Bus callback: admit the event's episode."""
        await self.admit([event.episode])

    async def admit(self, episodes: Iterable[Episode]) -> AdmissionReport:
        """Admit ``episodes`` under the policy; return the counts for this call."""
        policy = self.policy
        report = AdmissionReport()
        real: list[Transition] = []
        synthetic: list[Transition] = []
        for episode in episodes:
            report.episodes += 1
            real_steps = [t for t in episode.transitions if t.source is Source.REAL]
            synthetic_steps = [t for t in episode.transitions if t.source is not Source.REAL]
            real.extend(real_steps)
            if not synthetic_steps:
                continue
            if policy.require_done and not episode.done:
                report.skipped_unfinished += len(synthetic_steps)
            elif len(episode.transitions) < policy.min_steps:
                report.skipped_short += len(synthetic_steps)
            else:
                kept = synthetic_steps
                if policy.max_per_episode is not None:
                    kept = _spread(synthetic_steps, policy.max_per_episode)
                report.skipped_per_episode += len(synthetic_steps) - len(kept)
                synthetic.extend(kept)
        async with self._lock:
            if policy.dedup_real:
                real = await self._dedup(real, report)
            if policy.dedup:
                synthetic = await self._dedup(synthetic, report)
            if real:
                await self.buffer.add(real)
                report.real += len(real)
            if synthetic:
                room = await self._synthetic_room()
                if room < len(synthetic):
                    report.skipped_cap += len(synthetic) - room
                    synthetic = synthetic[:room]
            if synthetic:
                await self.buffer.add(synthetic)
                report.synthetic += len(synthetic)
        self.report.merge(report)
        return report

    async def _dedup(self, transitions: list[Transition], report: AdmissionReport) -> list[Transition]:
        if not transitions:
            return transitions
        hashes = [content_hash(t) for t in transitions]
        stored = await self.buffer.contains_content(hashes)
        seen: set[str] = set()
        kept: list[Transition] = []
        for t, h in zip(transitions, hashes, strict=True):
            if h in stored or h in seen:
                report.skipped_duplicate += 1
            else:
                seen.add(h)
                kept.append(t)
        return kept

    async def _synthetic_room(self) -> int:
        share = self.policy.max_synthetic_share
        if share >= 1.0:
            return 1 << 62
        real = await self.buffer.count(source=Source.REAL)
        synthetic = await self.buffer.count(source=Source.SYNTHETIC)
        # synthetic' <= share * (real + synthetic')  <=>  synthetic' <= share * real / (1 - share)
        limit = math.floor(share * real / (1.0 - share) + 1e-9)
        return max(0, limit - synthetic)


async def admit_episodes(
    buffer: ReplayBuffer,
    episodes: EventBus | Subscription[EpisodeCompleted] | Iterable[Episode] | AsyncIterable[Episode],
    policy: AdmissionPolicy | None = None,
    *,
    batch_size: int = 64,
) -> AdmissionReport:
    """Admit completed episodes into ``buffer`` under ``policy``; return the counts.

    ``episodes`` may be:

    - an :class:`~dreamgym_sdk.EventBus`: subscribes to ``EpisodeCompleted`` and admits until the bus
      closes (run it in a task group beside your rollouts);
    - a subscription to ``EpisodeCompleted`` (you chose its buffer size and overflow policy);
    - episodes, sync or async iterable.

    Episodes already waiting on a subscription are admitted together, up to ``batch_size`` at a time, so
    a burst of completions makes few writes.
    """
    admitter = EpisodeAdmitter(buffer, policy)
    if isinstance(episodes, EventBus):
        subscription = episodes.subscribe(EpisodeCompleted, name="replay-admission")
        async with subscription:
            await _admit_stream(admitter, subscription, batch_size)
    elif isinstance(episodes, Subscription):
        stream: Subscription[EpisodeCompleted] = episodes  # pyright: ignore[reportUnknownVariableType]
        await _admit_stream(admitter, stream, batch_size)
    elif isinstance(episodes, AsyncIterable):
        batch: list[Episode] = []
        async for episode in episodes:
            batch.append(episode)
            if len(batch) >= batch_size:
                await admitter.admit(batch)
                batch = []
        if batch:
            await admitter.admit(batch)
    else:
        await admitter.admit(episodes)
    return admitter.report


async def _admit_stream(
    admitter: EpisodeAdmitter, subscription: Subscription[EpisodeCompleted], batch_size: int
) -> None:
    while True:
        try:
            events = await subscription.receive_batch(batch_size)
        except anyio.EndOfStream:
            return
        await admitter.admit([event.episode for event in events])
