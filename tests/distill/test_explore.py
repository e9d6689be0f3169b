"""Exploration of a TextWorld game's solution: every admissible command once in every state on its path."""

# pyright: reportMissingImports=false

from __future__ import annotations

from distill_helpers import needs_textworld

from dreamgym_sdk.distill.ground_truth import episodes_of
from dreamgym_sdk.integrations.textworld import GameInfo, TextWorldEnv, annotate_textworld, explore_textworld
from dreamgym_sdk.types import Source

pytestmark = needs_textworld


async def _admitted_along(game: GameInfo, path: list[str]) -> list[list[str]]:
    """The commands the game admits in each state of ``path`` (before each of its steps)."""
    async with TextWorldEnv(max_steps=20) as env:
        _, info = await env.reset(task=game.to_task())
        commands: list[list[str]] = []
        for action in path:
            commands.append(list(info["admissible_commands"]))
            info = (await env.step(action)).info
    return commands


async def test_every_admissible_command_is_tried_once_from_every_state_of_the_solution(
    tw_games: list[GameInfo],
) -> None:
    game = tw_games[0]
    transitions = await explore_textworld([game])
    expert, *branches = episodes_of(transitions).values()
    solution = [t.action for t in expert]
    assert expert[-1].success
    commands = await _admitted_along(game, solution)
    wanted = sorted(
        (*solution[:depth], command)
        for depth, admitted in enumerate(commands)
        for command in admitted
        if command != solution[depth]
    )
    assert sorted(tuple(t.action for t in steps) for steps in branches) == wanted
    assert all(t.source is Source.REAL and t.task_id == game.id for t in transitions)
    # whole episodes from step 0, so the annotation's replay reproduces every one of them
    _, truth = await annotate_textworld(transitions, [game])
    assert not truth.skipped and len(truth.steps) == len(transitions)
