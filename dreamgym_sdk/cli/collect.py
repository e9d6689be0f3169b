"""``dreamgym collect``: collect real transitions from real environments.

``dreamgym collect textworld --games 20 --policy expert=0.7,noisy=0.3 -o real.jsonl`` generates (or reuses)
20 cooking games, plays them with a mixture of the expert and an ε-random expert, appends every
transition to ``real.jsonl`` (and to a LanceDB replay buffer with ``--lancedb``), shows a progress bar
and a summary table on stderr, and prints the summary as JSON on stdout.

``dreamgym collect tasks --games-from tw_games -o tasks.jsonl`` writes the task of every game with its real
initial state: the seed tasks of ``dreamgym train`` (a distilled experience model cannot imagine a state).
"""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dreamgym_sdk.cli._options import command_group, interrupt_says, run_async
from dreamgym_sdk.collect import (
    CollectionSummary,
    ExpertPolicy,
    Granularity,
    JsonlSink,
    MixturePolicy,
    RandomAdmissiblePolicy,
    SkipKnownEpisodes,
    TransitionSink,
    collect,
)
from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.types import Episode, Transition

__all__ = ["app", "build_policy", "parse_policy_mix"]

app = command_group(
    "collect", help="Collect real transitions (offline data) and tasks from real environments."
)

POLICIES = ("expert", "noisy", "random")
"""Policy names of ``--policy``: the expert, the ε-random expert (``--epsilon``), uniform random."""


class GameKind(StrEnum):
    """Which TextWorld games to generate."""

    COOKING = "cooking"
    CUSTOM = "custom"


class SplitChoice(StrEnum):
    """The cooking split (``any`` draws from every food)."""

    TRAIN = "train"
    VALID = "valid"
    TEST = "test"
    ANY = "any"


class Observation(StrEnum):
    """What the policy sees."""

    ABSTRACT = "abstract"
    RAW = "raw"


@app.callback()
def main() -> None:
    """Collect real transitions (offline data) and tasks from real environments."""


def parse_policy_mix(text: str) -> list[tuple[str, float]]:
    """Parse ``"expert=0.7,noisy=0.3"`` (a bare name weighs 1) into ``(name, weight)`` pairs.

    Raises:
        typer.BadParameter: an unknown name or a weight that is not a positive number.
    """
    mix: list[tuple[str, float]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in POLICIES:
            raise typer.BadParameter(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise typer.BadParameter(f"weight of {name!r} is not a number: {weight!r}") from None
        if value <= 0:
            raise typer.BadParameter(f"weight of {name!r} must be positive")
        mix.append((name, value))
    if not mix:
        raise typer.BadParameter("name at least one policy")
    return mix


def build_policy(mix: Sequence[tuple[str, float]], *, epsilon: float, seed: int, per: Granularity) -> Policy:
    """The policy of a parsed ``--policy`` mix (a :class:`MixturePolicy` when it names several)."""

    def make(name: str, index: int) -> Policy:
        if name == "expert":
            return ExpertPolicy()
        return RandomAdmissiblePolicy(epsilon if name == "noisy" else 1.0, seed=seed + index)

    if len(mix) == 1:
        return make(mix[0][0], 0)
    return MixturePolicy(
        [(make(name, i), weight) for i, (name, weight) in enumerate(mix)], seed=seed, per=per
    )


class _FanOut:
    """Adds every batch to each sink in turn."""

    def __init__(self, sinks: Sequence[TransitionSink]) -> None:
        self.sinks = list(sinks)

    async def add(self, transitions: Sequence[Transition]) -> None:
        for sink in self.sinks:
            await sink.add(transitions)


def _textworld() -> Any:
    """The TextWorld integration (imported here: it maps onto ``dreamgym_sdk.integrations`` at install
    time, so it stays out of ``dreamgym --help``)."""
    return importlib.import_module("dreamgym_sdk.integrations.textworld")


def _summary_table(summary: CollectionSummary, max_rows: int) -> Table:
    table = Table(title=f"Collected {summary.transitions} transition(s) in {summary.episodes} episode(s)")
    for column in ("game", "episodes", "success", "mean reward", "transitions"):
        if column == "game":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right")
    games = list(summary.per_game.values())
    for stats in games[:max_rows]:
        table.add_row(
            stats.name, str(stats.episodes), f"{stats.success_rate:.0%}", f"{stats.mean_reward:.2f}",
            str(stats.transitions),
        )  # fmt: skip
    if len(games) > max_rows:
        table.add_row(f"... {len(games) - max_rows} more", "", "", "", "")
    table.add_section()
    table.add_row(
        "all", str(summary.episodes), f"{summary.success_rate:.0%}", f"{summary.mean_reward:.2f}",
        str(summary.transitions),
    )  # fmt: skip
    table.caption = f"mean length {summary.mean_length:.1f} steps · {summary.elapsed_s:.1f} s"
    return table


@app.command("textworld")
def textworld(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSON-lines file the transitions are appended to.")
    ] = Path("real.jsonl"),
    lancedb: Annotated[
        Path | None,
        typer.Option("--lancedb", help="Also add the transitions to a LanceDB replay buffer at this path."),
    ] = None,
    embedder: Annotated[
        str, typer.Option("--embedder", help="Embedder of the LanceDB buffer (minilm, hashing, hf:<path>).")
    ] = "minilm",
    game_dir: Annotated[
        Path, typer.Option("--game-dir", help="Where games are generated, or reused when already there.")
    ] = Path("tw_games"),
    games_from: Annotated[
        Path | None,
        typer.Option("--games-from", exists=True, file_okay=False, help="Play the games in this directory."),
    ] = None,
    games: Annotated[
        int | None, typer.Option("--games", "-n", min=1, help="Games to generate (default 10) or play.")
    ] = None,
    first_seed: Annotated[int, typer.Option("--first-seed", min=0, help="Seed of the first game.")] = 0,
    kind: Annotated[
        GameKind, typer.Option("--kind", help="Cooking games or custom quests.")
    ] = GameKind.COOKING,
    split: Annotated[SplitChoice, typer.Option("--split", help="Cooking split.")] = SplitChoice.TRAIN,
    recipe: Annotated[int, typer.Option("--recipe", min=1, max=5, help="Cooking: ingredients.")] = 1,
    take: Annotated[int, typer.Option("--take", min=0, max=5, help="Cooking: ingredients to find.")] = 1,
    go: Annotated[int, typer.Option("--go", help="Cooking: rooms (1, 6, 9 or 12).")] = 1,
    open_: Annotated[
        bool, typer.Option("--open", help="Cooking: containers and doors start closed.")
    ] = False,
    cook: Annotated[bool, typer.Option("--cook", help="Cooking: ingredients need cooking.")] = False,
    cut: Annotated[bool, typer.Option("--cut", help="Cooking: ingredients need cutting.")] = False,
    drop: Annotated[bool, typer.Option("--drop", help="Cooking: limited inventory.")] = False,
    world_size: Annotated[int, typer.Option("--world-size", min=1, help="Custom: rooms.")] = 2,
    nb_objects: Annotated[int, typer.Option("--nb-objects", min=0, help="Custom: objects.")] = 4,
    quest_length: Annotated[int, typer.Option("--quest-length", min=1, help="Custom: quest length.")] = 2,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Game generation processes.")] = 2,
    policy: Annotated[
        str, typer.Option("--policy", help="Policy mix, e.g. expert=0.7,noisy=0.2,random=0.1.")
    ] = "expert",
    epsilon: Annotated[
        float, typer.Option("--epsilon", min=0.0, max=1.0, help="Random-action rate of 'noisy'.")
    ] = 0.3,
    per: Annotated[
        Granularity, typer.Option("--per", help="Draw the mixture's policy per episode or per step.")
    ] = Granularity.EPISODE,
    episodes_per_game: Annotated[int, typer.Option("--episodes-per-game", "-k", min=1)] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Episodes played at once.")] = 4,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step limit of an episode.")] = 50,
    observation: Annotated[
        Observation, typer.Option("--observation", help="Abstract state or raw game text.")
    ] = Observation.ABSTRACT,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episodes and the policies.")] = 0,
    summary_json: Annotated[
        Path | None, typer.Option("--summary-json", help="Also write the JSON summary here.")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
    table_rows: Annotated[int, typer.Option("--table-rows", min=0, help="Games listed in the table.")] = 20,
) -> None:
    """Play TextWorld games with a policy mix and store every transition (source=real)."""
    tw = _textworld()
    mix = parse_policy_mix(policy)
    the_policy = build_policy(mix, epsilon=epsilon, seed=seed, per=per)
    try:
        spec = (
            tw.CookingSpec(
                split=None if split is SplitChoice.ANY else split.value, recipe=recipe, take=take, go=go,
                open=open_, cook=cook, cut=cut, drop=drop,
            )
            if kind is GameKind.COOKING
            else tw.CustomSpec(world_size=world_size, nb_objects=nb_objects, quest_length=quest_length)
        )  # fmt: skip
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc
    err = Console(stderr=True)
    finished = [0]

    async def run() -> CollectionSummary:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not progress, transient=False,
        ) as bars:  # fmt: skip
            if games_from is not None:
                infos: list[Any] = list(await anyio.to_thread.run_sync(tw.load_games, games_from))[:games]
                if not infos:
                    raise typer.BadParameter(f"no TextWorld games (.z8 + .json) in {games_from}")
            else:
                count = games or 10
                generating = bars.add_task("games", total=count)

                def generated(_: object) -> None:
                    bars.advance(generating)

                infos = await tw.generate_games(
                    spec, game_dir, range(first_seed, first_seed + count), workers=workers, on_game=generated
                )
            playing = bars.add_task("episodes", total=len(infos) * episodes_per_game)

            def played(_: Episode) -> None:
                bars.advance(playing)
                finished[0] += 1

            async with contextlib.AsyncExitStack() as stack:
                sinks: list[TransitionSink] = [JsonlSink(output)]
                if lancedb is not None:
                    from dreamgym_sdk.replay import LanceDBReplayBuffer, ReplayConfig

                    buffer = LanceDBReplayBuffer(ReplayConfig(uri=str(lancedb), embedder=embedder))
                    sinks.append(await stack.enter_async_context(buffer))
                sink = SkipKnownEpisodes.over_jsonl(output, _FanOut(sinks))  # a re-run adds nothing twice
                result = await collect(
                    lambda _: tw.TextWorldEnv(max_steps=max_steps, observation=observation.value),
                    the_policy, [info.to_task() for info in infos], sink,
                    episodes_per_task=episodes_per_game, max_concurrency=concurrency, seed=seed,
                    on_episode=played,
                )  # fmt: skip
        if sink.skipped:
            held = f"{sink.skipped} of {len(result.episodes)} episodes"
            err.print(f"{held} were already in {output}: not added again")
        return result.summary

    where = "" if games_from is not None else f"the games made so far are in {game_dir}; "
    with interrupt_says(
        lambda: (
            f"{where}{finished[0]} finished episodes were written to {output}: "
            "the same command goes on from there and adds none of them twice"
        )
    ):
        summary = run_async(run)
    text = summary.model_dump_json(indent=2)
    if summary_json is not None:
        summary_json.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
    err.print(_summary_table(summary, table_rows))
    err.print(f"new transitions appended to {output}" + (f" and {lancedb}" if lancedb is not None else ""))


@app.command("tasks")
def tasks(
    games_from: Annotated[
        Path, typer.Option("--games-from", exists=True, file_okay=False, help="The TextWorld games to reset.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSON-lines file the tasks are written to (replaced).")
    ] = Path("tasks.jsonl"),
    observation: Annotated[
        Observation, typer.Option("--observation", help="Abstract state or raw game text.")
    ] = Observation.ABSTRACT,
) -> None:
    """Write the task of every game with its real initial state (what `dreamgym train` starts from)."""
    tw = _textworld()
    infos: list[Any] = tw.load_games(games_from)
    if not infos:
        raise typer.BadParameter(f"no TextWorld games (.z8 + .json) in {games_from}")
    found: list[Any] = run_async(lambda: tw.tasks_with_initial_states(infos, observation=observation.value))
    output.write_text("".join(task.model_dump_json() + "\n" for task in found), encoding="utf-8")
    typer.echo(json.dumps({"tasks": len(found), "output": str(output)}))
    Console(stderr=True).print(f"{len(found)} task(s) with initial states written to {output}")
