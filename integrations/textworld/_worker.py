# pyright: reportMissingTypeStubs=false, reportUnknownMemberType=false
# (this worker talks to textworld directly, which ships no type information)
"""Worker process of :func:`~dreamgym_sdk.integrations.textworld.generate_games`.

TextWorld iterates over sets of strings while it generates a game, so its output depends on Python's
string hash seed: only processes started with a fixed ``PYTHONHASHSEED`` make byte-identical games per
seed. The parent starts ``python -m dreamgym_sdk.integrations.textworld._worker`` with that variable set
and writes one JSON job on stdin: ``{"spec": {...}, "out_dir": "...", "seeds": [...]}``. The worker
prints one line per game, ``PREFIX`` followed by ``{"seed": 1, "ok": true}`` or
``{"seed": 1, "ok": false, "error": "..."}``; any other output (TextWorld's, the Inform 7 compiler's) goes
to stderr or is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from typing import Any, cast

from .games import (
    CookingSpec,
    CustomSpec,
    _SpecHolder,  # pyright: ignore[reportPrivateUsage]
    dreamgym_metadata,
)

PREFIX = "@dreamgym-game "
EXTENSIONS = (".ni", ".z8", ".json")  # the JSON sidecar is moved last: it marks a complete game
HASH_SEED = "0"


def temp_prefix(pid: int) -> str:
    """Name prefix of the temporary directories the worker with this process id compiles games in."""
    return f".tmp-{pid}-"


def is_complete(out_dir: str, stem: str) -> bool:
    """Whether every file of the game ``stem`` is in ``out_dir``."""
    return all(os.path.isfile(os.path.join(out_dir, stem + ext)) for ext in EXTENSIONS)


def generate_one(spec: CookingSpec | CustomSpec, out_dir: str, seed: int) -> None:
    """Make and compile one game into ``out_dir``.

    The files are compiled in a private temporary directory and moved into place, so a concurrent
    generator or reader never sees a half-written game.

    Raises:
        ValueError: TextWorld cannot make a quest with these settings and this seed.
    """
    import textworld
    from textworld.generator import QuestGenerationError, compile_game, make_game

    options = textworld.GameOptions()
    options.seeds = seed
    try:
        if isinstance(spec, CookingSpec):
            from textworld.challenges.tw_cooking import cooking

            game = cooking.make(spec.settings(), options)
        else:
            options.nb_rooms = spec.world_size
            options.nb_objects = spec.nb_objects
            options.quest_length = spec.quest_length
            options.quest_breadth = spec.quest_breadth
            options.grammar.theme = spec.theme
            game = make_game(options)
    except QuestGenerationError as exc:
        raise ValueError(f"TextWorld cannot make a game for {spec!r} with seed {seed}: {exc}") from exc
    cast(dict[str, Any], game.metadata).update(dreamgym_metadata(spec, seed))

    stem = spec.file_stem(seed)
    tmp = tempfile.mkdtemp(prefix=temp_prefix(os.getpid()), dir=out_dir)  # the parent removes it if killed
    try:
        options.path = os.path.join(tmp, f"{stem}.z8")
        compile_game(game, options)
        for ext in EXTENSIONS:
            os.replace(os.path.join(tmp, stem + ext), os.path.join(out_dir, stem + ext))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    """Run one job read from stdin; return the exit code."""
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        print(f"PYTHONHASHSEED must be {HASH_SEED} for reproducible games", file=sys.stderr)
        return 2
    job = json.loads(sys.stdin.read())
    spec = _SpecHolder.model_validate({"spec": job["spec"]}).spec
    out_dir: str = job["out_dir"]
    protocol, sys.stdout = sys.stdout, sys.stderr  # prints from the generator must not mix in

    def report(message: dict[str, object]) -> None:
        protocol.write(PREFIX + json.dumps(message) + "\n")
        protocol.flush()

    for seed in job["seeds"]:
        try:
            if not is_complete(out_dir, spec.file_stem(seed)):
                generate_one(spec, out_dir, seed)
        except ValueError as exc:
            report({"seed": seed, "ok": False, "error": str(exc)})
        else:
            report({"seed": seed, "ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
