"""Derived admissible commands vs TextWorld's own: precision, recall and walkthrough coverage.

Plays real TextWorld games and, in every state the policy acts in, compares
``admissible_commands(observation, kind=...)`` (derived from the abstract state alone) with the game's
``info["admissible_commands"]``. Each game is played once along its walkthrough, then ``--episodes - 1``
more times by the expert (the game's ``policy_commands``) taking a random admissible command instead
with probability 0.3, 1.0, 0.3, 1.0, ... per episode. Prints one JSON object:

- ``overall`` and ``by_spec``: ``states``, ``precision`` and ``recall`` over all (state, command) pairs,
  ``exact`` (share of states whose derived list equals the real one), and for the walkthrough episodes
  ``walkthrough.commands``, ``walkthrough.admissible`` (how many the real game admits: the generator's
  walkthrough re-opens doors it opened on the way out, which the game does not admit) and
  ``walkthrough.derivable`` (share of the admitted ones that the derived list has). Targets:
  recall >= 0.95, walkthrough derivable = 1.0.
- ``errors``: the most frequent missed and extra commands by verb, with an example each.

Without ``--games-from`` it generates (or reuses, in ``--game-dir``) ``--seeds`` games of each of a
fixed mix of cooking and custom specs.

Usage: ``python benchmarks/bench_textworld_admissible.py [--games-from DIR ...] [--seeds 6] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk._versions import package_versions
from dreamgym_sdk.integrations.textworld import (
    CookingSpec,
    CustomSpec,
    GameInfo,
    GameKind,
    GameSpec,
    TextWorldEnv,
    admissible_commands,
    generate_games,
    load_games,
)

SPECS: tuple[GameSpec, ...] = (
    CookingSpec(open=True),  # the documented distillation run's games
    CookingSpec(cook=True, cut=True),
    CookingSpec(recipe=2, take=2, go=6, open=True, cook=True, cut=True),
    CookingSpec(recipe=3, take=3, go=9, open=True, cook=True, cut=True, drop=True),
    CookingSpec(recipe=5, take=5, go=12, open=True, cook=True, cut=True, drop=True, split="test"),
    CookingSpec(recipe=3, take=2, go=6, cut=True, split="valid"),
    CustomSpec(world_size=2, nb_objects=3, quest_length=2),
    CustomSpec(world_size=4, nb_objects=10, quest_length=5),
)
EPSILONS = (0.3, 1.0)


@dataclass
class Tally:
    """Counts for one group of games."""

    states: int = 0
    exact: int = 0
    true_positives: int = 0
    derived: int = 0
    real: int = 0
    walkthrough: int = 0
    walkthrough_admissible: int = 0
    walkthrough_derivable: int = 0
    missed: Counter[str] = field(default_factory=Counter[str])
    extra: Counter[str] = field(default_factory=Counter[str])
    examples: dict[str, str] = field(default_factory=dict[str, str])

    def add(self, derived: set[str], real: set[str], action: str | None) -> None:
        self.states += 1
        self.exact += derived == real
        self.true_positives += len(derived & real)
        self.derived += len(derived)
        self.real += len(real)
        for label, commands, counter in (
            ("missed", real - derived, self.missed),
            ("extra", derived - real, self.extra),
        ):
            for command in commands:
                verb = command.split()[0]
                counter[verb] += 1
                self.examples.setdefault(f"{label} {verb}", command)
        if action is not None:
            self.walkthrough += 1
            if action in real:
                self.walkthrough_admissible += 1
                self.walkthrough_derivable += action in derived

    def merge(self, other: Tally) -> None:
        for name in ("states", "exact", "true_positives", "derived", "real", "walkthrough"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.walkthrough_admissible += other.walkthrough_admissible
        self.walkthrough_derivable += other.walkthrough_derivable
        self.missed.update(other.missed)
        self.extra.update(other.extra)
        for key, value in other.examples.items():
            self.examples.setdefault(key, value)

    def summary(self) -> dict[str, Any]:
        return {
            "states": self.states,
            "precision": round(self.true_positives / max(self.derived, 1), 4),
            "recall": round(self.true_positives / max(self.real, 1), 4),
            "exact": round(self.exact / max(self.states, 1), 4),
            "walkthrough": {
                "commands": self.walkthrough,
                "admissible": self.walkthrough_admissible,
                "derivable": round(self.walkthrough_derivable / max(self.walkthrough_admissible, 1), 4),
            },
        }

    def errors(self, top: int = 8) -> dict[str, list[dict[str, Any]]]:
        def rows(label: str, counter: Counter[str]) -> list[dict[str, Any]]:
            return [
                {"verb": verb, "count": count, "example": self.examples[f"{label} {verb}"]}
                for verb, count in counter.most_common(top)
            ]

        return {"missed": rows("missed", self.missed), "extra": rows("extra", self.extra)}


async def play(env: TextWorldEnv, game: GameInfo, episodes: int, max_steps: int, seed: int) -> Tally:
    """Play ``game`` ``episodes`` times and tally every state the policy acted in."""
    kind: GameKind = game.spec.kind if game.spec is not None else "cooking"
    tally = Tally()
    for episode in range(episodes):
        rng = random.Random(f"{seed}-{game.id}-{episode}")
        epsilon = None if episode == 0 else EPSILONS[(episode - 1) % len(EPSILONS)]
        obs, info = await env.reset(task=game.to_task())
        walkthrough = list(info.get("walkthrough") or game.walkthrough)
        for step in range(max_steps):
            real: list[str] = info["admissible_commands"]
            if epsilon is None:
                if step >= len(walkthrough):
                    break
                action = walkthrough[step]
            elif rng.random() < epsilon or not info.get("policy_commands"):
                action = rng.choice(real)
            else:
                action = info["policy_commands"][0]
            derived = set(admissible_commands(obs, kind=kind))
            tally.add(derived, set(real), action if epsilon is None else None)
            obs, _, terminated, truncated, info = await env.step(action)
            if terminated or truncated:
                break
    return tally


def group(game: GameInfo) -> str:
    return game.spec.slug() if game.spec is not None else game.path.parent.name


async def main(args: argparse.Namespace) -> dict[str, Any]:
    games: list[GameInfo] = []
    if args.games_from:
        for directory in args.games_from:
            games.extend(load_games(directory))
    else:
        for spec in SPECS:
            games.extend(await generate_games(spec, args.game_dir, range(args.seeds), workers=args.workers))
    by_spec: dict[str, Tally] = {}
    async with TextWorldEnv(max_steps=args.max_steps) as env:
        for game in games:
            tally = await play(env, game, args.episodes, args.max_steps, args.seed)
            by_spec.setdefault(group(game), Tally()).merge(tally)
    overall = Tally()
    for tally in by_spec.values():
        overall.merge(tally)
    return {
        "games": len(games),
        "episodes_per_game": args.episodes,
        "overall": overall.summary(),
        "by_spec": {name: tally.summary() for name, tally in by_spec.items()},
        "errors": overall.errors(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Derived vs real TextWorld admissible commands (prints JSON)."
    )
    parser.add_argument("--games-from", action="append", type=Path, help="play the games of this directory")
    parser.add_argument("--game-dir", type=Path, default=Path(tempfile.gettempdir()) / "dreamgym-tw-games")
    parser.add_argument("--seeds", type=int, default=6, help="games per spec when generating")
    parser.add_argument("--episodes", type=int, default=3, help="per game: 1 walkthrough + random detours")
    parser.add_argument("--max-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="game generation processes")
    parser.add_argument("--quick", action="store_true", help="2 games per spec, 2 episodes (CI smoke)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.episodes = 2, 2
    return args


if __name__ == "__main__":
    print(json.dumps(anyio.run(main, parse_args()) | {"versions": package_versions()}, indent=2))
