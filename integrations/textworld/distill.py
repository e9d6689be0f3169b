"""The TextWorld side of distillation: collect real transitions for an experience model, annotate them.

:func:`collect_textworld` plays games with a mixture of the expert, an ε-random expert, uniformly random
admissible actions and, now and then, an invalid action (:class:`~dreamgym_sdk.distill.InvalidActionPolicy`),
so the data shows the model successes, detours, failures and refusals. :func:`annotate_textworld`
replays the episodes for their ground truth and writes a reasoning trace per transition. Needs the
``textworld`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.collect import ExpertPolicy, MemorySink, MixturePolicy, RandomAdmissiblePolicy, collect
from dreamgym_sdk.distill.annotate import AnnotatedData, Annotator, annotate_transitions
from dreamgym_sdk.distill.ground_truth import GroundTruthReport
from dreamgym_sdk.distill.metrics import Reference
from dreamgym_sdk.env import RecordingEnv
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.policies.collection import InvalidActionPolicy, expert_action
from dreamgym_sdk.types import Task, Transition

from .actions import admissible_commands
from .env import TextWorldEnv
from .ground_truth import replay_ground_truth
from .rules import RuleBasedAnnotator

__all__ = [
    "PolicyMix",
    "annotate_textworld",
    "collect_textworld",
    "collection_policy",
    "explore_textworld",
    "references_from",
    "textworld_tasks",
]


class PolicyMix(BaseModel):
    """Who plays the episodes collected for an experience model (weights per episode)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expert: float = Field(default=0.5, ge=0)
    """The game's own solution."""
    noisy: float = Field(default=0.35, ge=0)
    """The expert with a random admissible detour at rate ``epsilon``."""
    random: float = Field(default=0.15, ge=0)
    """Uniformly random admissible actions."""
    epsilon: float = Field(default=0.3, ge=0, le=1)
    invalid_rate: float = Field(default=0.1, ge=0, le=1)
    """On top of any of them: the share of steps replaced by a non-admissible action."""


def collection_policy(mix: PolicyMix, *, seed: int = 0) -> Policy:
    """The collection policy of ``mix``."""
    members: list[tuple[Policy, float]] = [
        (policy, weight)
        for policy, weight in (
            (ExpertPolicy(), mix.expert),
            (RandomAdmissiblePolicy(mix.epsilon, seed=seed + 1), mix.noisy),
            (RandomAdmissiblePolicy(1.0, seed=seed + 2), mix.random),
        )
        if weight > 0
    ]
    if not members:
        raise ValueError("the policy mix needs a positive weight")
    base: Policy = members[0][0] if len(members) == 1 else MixturePolicy(members, seed=seed)
    if mix.invalid_rate == 0:
        return base
    # the invalid actions a DreamEnv will offer: TextWorld's grammar on the state, minus what the game admits
    return InvalidActionPolicy(mix.invalid_rate, seed=seed + 3, base=base, near_misses=admissible_commands)


def textworld_tasks(games: Sequence[Any]) -> dict[str, Task]:
    """Task id → task of each game (``GameInfo.to_task()``)."""
    return {g.id: g.to_task() for g in games}


async def collect_textworld(
    games: Sequence[Any],
    *,
    mix: PolicyMix | None = None,
    episodes_per_game: int = 3,
    max_steps: int = 20,
    concurrency: int = 4,
    seed: int = 0,
    on_episode: Callable[[Any], object] | None = None,
) -> list[Transition]:
    """Play every game ``episodes_per_game`` times with the policy mix; returns the transitions in episode
    order.

    Args:
        games: :class:`~dreamgym_sdk.integrations.textworld.GameInfo` of each game.
        mix: the policy mix (default :class:`PolicyMix`).
        episodes_per_game: episodes per game.
        max_steps: step limit of an episode.
        concurrency: episodes played at once.
        seed: seed of the episodes and the policies.
        on_episode: called with each finished episode.
    """
    sink = MemorySink()
    result = await collect(
        lambda _: TextWorldEnv(max_steps=max_steps),
        collection_policy(mix or PolicyMix(), seed=seed),
        [g.to_task() for g in games],
        sink,
        episodes_per_task=episodes_per_game,
        max_concurrency=concurrency,
        seed=seed,
        on_episode=on_episode,
    )
    return [t for episode in result.episodes for t in episode.transitions]


async def explore_textworld(
    games: Sequence[Any], *, max_steps: int = 20, on_game: Callable[[Any], object] | None = None
) -> list[Transition]:
    """Every command the game admits, tried once in every state of its solution: for each step ``d`` of the
    expert's episode and each other admissible command ``c`` there, an episode that plays the solution's
    first ``d`` commands, then ``c``, and stops. Returns the transitions in episode order (the expert's
    episode first), each episode whole so that :func:`annotate_textworld` can replay it.

    What an experience model that copies retrieved examples needs: the game's own answer to each wrong
    turn the policy can take (a wrong ingredient, a wrong cut), which demonstrations and random play seldom
    show. A game whose solution takes ``L`` steps with ``A`` commands admitted per state costs about
    ``L * A`` short episodes (in a cooking game: 5 steps, 17-40 commands, about 150 episodes).

    Args:
        games: :class:`~dreamgym_sdk.integrations.textworld.GameInfo` of each game.
        max_steps: step limit of the expert's episode.
        on_game: called with each game once it is explored.
    """
    transitions: list[Transition] = []
    async with RecordingEnv(TextWorldEnv(max_steps=max_steps)) as env:
        for game in games:
            task = game.to_task()
            _, info = await env.reset(task=task)
            solution: list[str] = []
            admitted: list[list[str]] = []
            done = False
            while not done and (action := expert_action(info, env.history)) is not None:
                admitted.append([str(c) for c in info.get("admissible_commands", ())])
                result = await env.step(action)
                solution.append(action)
                info, done = result.info, result.done
            assert env.episode is not None
            transitions.extend(env.episode.transitions)
            for depth, commands in enumerate(admitted):
                for command in commands:
                    if command == solution[depth]:
                        continue
                    await env.reset(task=task)
                    for action in solution[:depth]:
                        await env.step(action)
                    await env.step(command)
                    transitions.extend(env.episode.transitions)
            if on_game is not None:
                on_game(game)
    return transitions


async def annotate_textworld(
    transitions: Sequence[Transition],
    games: Sequence[Any],
    *,
    annotator: Annotator | None = None,
    concurrency: int = 8,
    on_done: Callable[[Any], None] | None = None,
) -> tuple[AnnotatedData, GroundTruthReport]:
    """Replay the episodes for their ground truth, then annotate every transition.

    Args:
        transitions: recorded TextWorld transitions.
        games: the games they were played in.
        annotator: defaults to :class:`RuleBasedAnnotator` (dense rewards).
        concurrency: annotations in flight (matters for LLM annotators).
        on_done: called after each annotation.
    """
    truth = await replay_ground_truth(transitions, games)
    data = await annotate_transitions(
        transitions,
        annotator or RuleBasedAnnotator(),
        tasks=textworld_tasks(games),
        ground_truth=truth.steps,
        concurrency=concurrency,
        on_done=on_done,
    )
    return data, truth


def references_from(data: AnnotatedData) -> list[Reference]:
    """Fidelity references of annotated transitions (admissibility from their annotations)."""
    return [
        Reference(t, a.action_admissible) for t, a in zip(data.transitions, data.annotations, strict=True)
    ]
