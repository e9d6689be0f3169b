"""The ground truth of recorded TextWorld steps, recovered by replaying their episodes.

A stored :class:`~dreamgym_sdk.Transition` keeps the states the agent saw, not the world's facts nor the
commands the game admitted. TextWorld games are deterministic, so replaying an episode's actions from the
start in the same game file gives them back exactly: :func:`replay_ground_truth` does that for any
collection of transitions (a ``dreamgym collect`` JSONL file, a replay-buffer export), checks that each
replayed step reproduces the recorded next state, and returns one
:class:`~dreamgym_sdk.distill.StepGroundTruth` per transition. Needs the ``textworld`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dreamgym_sdk.distill.ground_truth import GroundTruthReport, StepGroundTruth, episodes_of
from dreamgym_sdk.types import Transition

from .env import TextWorldEnv
from .games import GameInfo, load_games

__all__ = ["replay_ground_truth"]


def _normalise(command: str) -> str:
    return " ".join(command.lower().split())


async def replay_ground_truth(
    transitions: Iterable[Transition],
    games: Mapping[str, Any] | Sequence[Any] | str | Path,
    *,
    check_states: bool = True,
    on_episode: Callable[[str], None] | None = None,
) -> GroundTruthReport:
    """Replay every episode of ``transitions`` in its TextWorld game and record each step's ground truth.

    ```python
    report = await replay_ground_truth(read_jsonl("real.jsonl"), "tw_games")
    truth = report.steps[transition.id]      # facts before/after, admissible commands, score, won/lost
    ```

    Episodes are matched to games by task id (:attr:`GameInfo.id`, which ``GameInfo.to_task()`` uses as
    the task id). An episode must hold steps ``0..n-1``; its first state must be the game's start.

    Args:
        transitions: the recorded transitions (any order; several episodes and games).
        games: a directory of games, a list of :class:`GameInfo`, or
            a mapping of task id to ``GameInfo``.
        check_states: compare each replayed observation with the recorded next state (abstract or raw
            observations are both recognised) and skip an episode that diverges.
        on_episode: called with each episode id once it is replayed (progress bars).

    Raises:
        MissingExtraError: ``textworld`` is not installed.
    """
    if isinstance(games, str | Path):
        catalogue: dict[str, Any] = {g.id: g for g in load_games(games)}
    elif isinstance(games, Mapping):
        catalogue = dict(games)
    else:
        catalogue = {g.id: g for g in games}
    steps: dict[str, StepGroundTruth] = {}
    skipped: dict[str, str] = {}
    episodes = episodes_of(transitions)
    env: Any = None
    try:
        for episode_id, episode in episodes.items():
            game = catalogue.get(episode[0].task_id)
            if not isinstance(game, GameInfo):
                skipped[episode_id] = f"no game for task {episode[0].task_id}"
                continue
            if [t.step for t in episode] != list(range(len(episode))):
                skipped[episode_id] = "the episode's steps are not 0..n-1"
                continue
            if env is None:
                env = TextWorldEnv(game, max_steps=10_000)
            found, reason = await _replay(env, game, episode, check_states)
            if reason is not None:
                skipped[episode_id] = reason
            else:
                steps.update(found)
            if on_episode is not None:
                on_episode(episode_id)
    finally:
        if env is not None:
            await env.close()
    return GroundTruthReport(steps=steps, skipped=skipped)


async def _replay(
    env: Any, game: Any, episode: list[Transition], check: bool
) -> tuple[dict[str, StepGroundTruth], str | None]:
    obs, info = await env.reset(task=game.to_task())
    raw = str(info.get("feedback", ""))
    if check and not _same(episode[0].state, obs, raw):
        return {}, "the first state differs from the game's start (another game or observation mapper?)"
    found: dict[str, StepGroundTruth] = {}
    for t in episode:
        admissible = tuple(str(a) for a in info.get("admissible_commands", ()))
        before = info
        result = await env.step(t.action)
        info = result.info
        if check and not _same(t.next_state, result.observation, str(info.get("feedback", ""))):
            return {}, f"step {t.step} ({t.action!r}) did not reproduce the recorded next state"
        found[t.id] = StepGroundTruth(
            transition_id=t.id,
            action_admissible=_normalise(t.action) in {_normalise(a) for a in admissible},
            admissible=admissible,
            facts_before=tuple(before.get("facts", ())),
            facts_after=tuple(info.get("facts", ())),
            score_before=float(before.get("score", 0.0)),
            score_after=float(info.get("score", 0.0)),
            max_score=float(info.get("max_score", 0.0)),
            won=bool(info.get("won", False)),
            lost=bool(info.get("lost", False)),
            feedback=str(info.get("feedback", "")),
        )
        if result.done and t is not episode[-1]:
            return {}, f"the replay ended at step {t.step}, before the recorded episode did"
    return found, None


def _same(recorded: str, abstract: str, raw: str) -> bool:
    return recorded.strip() in (abstract.strip(), raw.strip())
