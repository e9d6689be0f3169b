"""The demo's real side: TextWorld games, offline episodes, and the experience model distilled from them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk.demo.config import DemoConfig
from dreamgym_sdk.distill.sft import TrainingProgress
from dreamgym_sdk.experience.reasoning import ReasoningConfig, ReasoningExperienceModel
from dreamgym_sdk.types import Episode, Source, Task, Transition

__all__ = [
    "collect_real",
    "episodes_of",
    "make_games",
    "open_dream_model",
    "starting_where_played",
    "train_experience_model",
]


async def make_games(
    config: DemoConfig, directory: Path, on_game: Callable[[Any], None]
) -> tuple[list[Any], list[Any]]:
    """Generate (or reuse) the training games and the held-out games; returns ``(train, held_out)``."""
    from dreamgym_sdk.integrations.textworld import generate_games

    first = config.train_games if config.held_out_seed is None else config.held_out_seed
    seeds = [*range(config.train_games), *range(first, first + config.held_out_games)]
    games = await generate_games(config.game, directory, seeds, workers=2, on_game=on_game)
    return games[: config.train_games], games[config.train_games :]


async def collect_real(
    config: DemoConfig,
    games: Sequence[Any],
    path: Path,
    *,
    exploration: bool = False,
    on_progress: Callable[[], object] | None = None,
) -> list[Transition]:
    """Collect (or read back) real transitions of ``games``: the offline demonstrations (expert,
    noisy-expert and random players; what behaviour cloning learns from), or with ``exploration`` what
    only grounds and trains the experience model: the ``exploration_episodes_per_game`` random players'
    episodes, then (``explore_solution_branches``) one-step branches from every game's solution.
    ``on_progress`` is called after each episode collected and each game explored."""
    from dreamgym_sdk.collect import JsonlSink, read_jsonl
    from dreamgym_sdk.integrations.textworld import PolicyMix, collect_textworld, explore_textworld

    if await anyio.Path(path).exists():
        return await anyio.to_thread.run_sync(read_jsonl, path)
    if exploration:
        mix = PolicyMix(expert=0.0, noisy=0.0, random=1.0, invalid_rate=0.1)
        episodes, seed = config.exploration_episodes_per_game, 7  # other random streams than the demos'
    else:
        mix = PolicyMix(expert=0.5, noisy=0.35, random=0.15, invalid_rate=0.1)
        episodes, seed = config.episodes_per_game, 0
    transitions = (
        await collect_textworld(
            games,
            mix=mix,
            episodes_per_game=episodes,
            max_steps=config.max_steps,
            seed=seed,
            on_episode=on_progress and (lambda _: on_progress()),
        )
        if episodes
        else []
    )
    if exploration and config.explore_solution_branches:
        transitions += await explore_textworld(
            games, max_steps=config.max_steps, on_game=on_progress and (lambda _: on_progress())
        )
    partial = path.with_suffix(".partial")
    partial.write_text("")
    await JsonlSink(partial).add(transitions)
    partial.replace(path)
    return transitions


def episodes_of(transitions: Sequence[Transition], tasks: dict[str, Task]) -> list[Episode]:
    """Regroup recorded transitions into episodes (in first-seen order)."""
    by_episode: dict[str, list[Transition]] = {}
    for t in transitions:
        by_episode.setdefault(t.episode_id, []).append(t)
    episodes: list[Episode] = []
    for episode_id, steps in by_episode.items():
        steps.sort(key=lambda t: t.step)
        episodes.append(
            Episode(
                id=episode_id,
                task=tasks[steps[0].task_id],
                source=Source.REAL,
                initial_state=steps[0].state,
                transitions=tuple(steps),
            )
        )
    return episodes


def starting_where_played(tasks: Sequence[Task], episodes: Sequence[Episode]) -> list[Task]:
    """The tasks ``episodes`` played, each with the initial state its real game starts in (what a
    synthetic episode of it starts from)."""
    initial = {e.task.id: e.initial_state for e in episodes}
    return [t.model_copy(update={"initial_state": initial[t.id]}) for t in tasks if t.id in initial]


async def train_experience_model(
    config: DemoConfig,
    transitions: Sequence[Transition],
    games: Sequence[Any],
    directory: Path,
    on_progress: Callable[[TrainingProgress], None] | None = None,
) -> Path:
    """Annotate the offline transitions with reasoning traces and distil a tiny experience model
    (``on_progress``: the trainer's reports, from its thread)."""
    from dreamgym_sdk.distill import (
        DatasetConfig,
        DistillConfig,
        StudentConfig,
        build_dataset,
        distill,
        read_card,
    )
    from dreamgym_sdk.integrations.textworld import annotate_textworld, textworld_tasks

    if await anyio.to_thread.run_sync(read_card, directory) is not None:
        return directory
    annotated, _ = await annotate_textworld(transitions, games)
    dataset_config = DatasetConfig(
        k=1,
        history_window=1,
        embedder="hashing",
        # the synthetic tasks are the training games, whose real transitions ground the model: it learns to
        # use same-game examples (and when their action differs from the one asked about), retrieved from
        # the game itself, whose recipe they reveal
        exclude="episode",
        retrieval_scope="action",
        answer_format="sections",  # no JSON quoting for a 1M-parameter model to get wrong
        ablation_mix=config.experience_variants,
    )
    dataset = await build_dataset(annotated.transitions, tasks=textworld_tasks(games), config=dataset_config)
    distill_config = DistillConfig(
        max_steps=config.distill_steps,
        warmup_lm_steps=min(200, config.distill_steps // 10),
        batch_size=4,
        learning_rate=3e-3,
        logging_steps=25,
        student=StudentConfig(vocab_size=2048, hidden_size=128, layers=3, heads=4),
    )
    result = await distill(
        dataset, directory, config=distill_config, dataset_config=dataset_config, on_progress=on_progress
    )
    return result.path


@contextlib.asynccontextmanager
async def open_dream_model(
    config: DemoConfig, model: str, offline: Sequence[Transition], replay_uri: Path
) -> AsyncGenerator[ReasoningExperienceModel]:
    """The reasoning experience model, grounded on a LanceDB buffer (on disk) of the offline transitions.

    ``model`` is a distilled directory (``hf:DIR`` or ``DIR``) or any provider string.
    """
    from dreamgym_sdk.distill import open_experience_model, read_card, read_replay
    from dreamgym_sdk.providers import ProviderConfig, get_provider
    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

    directory = Path(model.removeprefix("hf:"))
    card = (
        await anyio.to_thread.run_sync(read_card, directory) if await anyio.Path(directory).is_dir() else None
    )
    embedder = card.dataset.embedder if card is not None else "hashing"
    async with LanceDBReplayBuffer(ReplayConfig(uri=str(replay_uri), embedder=embedder)) as buffer:
        if await buffer.count() == 0:
            # a distilled model is grounded on the transitions it was trained to read; others on all
            grounding = await anyio.to_thread.run_sync(read_replay, directory) if card else list(offline)
            await buffer.add(grounding)
        if card is not None:
            provider_config = ProviderConfig(request_timeout=None, backend_options={"max_batch_size": 64})
            async with open_experience_model(
                directory,
                retriever=buffer,
                provider_config=provider_config,
                max_tokens=config.experience_max_tokens,
                max_retries=1,
                exact_replay=config.exact_replay,
                outcome_checks=config.outcome_checks,
            ) as dream:
                yield dream
            return
        provider = get_provider(model)
        try:
            yield ReasoningExperienceModel(
                provider,
                retriever=buffer,
                config=ReasoningConfig(
                    reward_mode="dense",
                    exact_replay=config.exact_replay,
                    outcome_checks=config.outcome_checks,
                ),
            )
        finally:
            await provider.aclose()
