"""Generate TextWorld games from a spec and seeds, cached on disk.

The same spec and seed always give byte-identical files, so a game already in the output directory is
reused, never regenerated. Generation runs in worker processes, off the event loop: TextWorld's output
depends on Python's string hash seed, and only a process started with a fixed ``PYTHONHASHSEED`` makes
the same game for the same seed every time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.logging import get_logger

from ._worker import EXTENSIONS, HASH_SEED, PREFIX, temp_prefix
from .games import GameInfo, GameSpec

__all__ = ["game_path", "generate_games"]

_log = get_logger(__name__)
_WORKER = f"{__package__}._worker"
_STDERR_TAIL = 4000


def game_path(spec: GameSpec, out_dir: str | Path, seed: int) -> Path:
    """Where :func:`generate_games` puts (or finds) the game of ``spec`` and ``seed``."""
    return Path(out_dir) / f"{spec.file_stem(seed)}.z8"


async def generate_games(
    spec: GameSpec,
    out_dir: str | Path,
    seeds: Sequence[int],
    *,
    workers: int = 1,
    on_game: Callable[[GameInfo], None] | None = None,
) -> list[GameInfo]:
    """Generate one game per seed (or reuse it from ``out_dir``) and return their infos in seed order.

    ```python
    games = await generate_games(CookingSpec(split="train"), "tw_games", range(10), workers=2)
    ```

    Each game costs about 2.5 s of CPU in a worker process (plus about 1 s to start each worker).

    Args:
        spec: what kind of game to make.
        out_dir: the cache directory; created if needed.
        seeds: one game per seed (each in ``[0, 2**32)``); a repeated seed gives the same game.
        workers: how many worker processes generate games in parallel.
        on_game: called with each game's info as soon as it is ready (for progress bars).

    Raises:
        MissingExtraError: textworld is not installed and a game has to be generated.
        ConfigError: TextWorld cannot make a game with these settings for some seed.
        RuntimeError: a worker process failed.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if any(not 0 <= seed < 2**32 for seed in seeds):
        raise ValueError("seeds must be in [0, 2**32)")
    out = await anyio.Path(out_dir).resolve()
    await out.mkdir(parents=True, exist_ok=True)
    await anyio.to_thread.run_sync(_remove_orphans, Path(out))
    infos: dict[int, GameInfo] = {}

    async def ready(seed: int) -> None:
        info = await anyio.to_thread.run_sync(GameInfo.load, game_path(spec, Path(out), seed))
        infos[seed] = info
        if on_game is not None:
            on_game(info)

    unique = list(dict.fromkeys(seeds))
    missing = [seed for seed in unique if not _is_complete(game_path(spec, Path(out), seed))]
    if missing:
        require("textworld", extra="textworld", feature="TextWorld game generation")
    errors: list[str] = []
    async with anyio.create_task_group() as tg:
        for seed in unique:
            if seed not in missing:
                tg.start_soon(ready, seed)
        for chunk in (missing[i::workers] for i in range(min(workers, len(missing)))):
            tg.start_soon(_run_worker, spec, Path(out), chunk, ready, errors)
    if errors:
        raise ConfigError("; ".join(errors))
    return [infos[seed] for seed in seeds]


def _is_complete(path: Path) -> bool:
    return all(path.with_suffix(ext).is_file() for ext in EXTENSIONS)


async def _run_worker(
    spec: GameSpec, out: Path, seeds: list[int], ready: Callable[[int], Awaitable[None]], errors: list[str]
) -> None:
    """Generate ``seeds`` in one worker process, calling ``ready(seed)`` as each game lands."""
    job = json.dumps({"spec": spec.model_dump(mode="json"), "out_dir": str(out), "seeds": seeds})
    env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
    stderr = bytearray()
    process = await anyio.open_process(
        [sys.executable, "-m", _WORKER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await _talk(process, job, ready, errors, stderr)
    finally:  # also when cancelled (Ctrl-C): kill the worker, then remove its half-made game
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()
        _remove_temp_dirs(out, process.pid)
    if process.returncode != 0:
        tail = stderr[-_STDERR_TAIL:].decode(errors="replace")
        code = process.returncode
        raise RuntimeError(f"TextWorld game generation failed (worker exit code {code}):\n{tail}")


async def _talk(
    process: Process, job: str, ready: Callable[[int], Awaitable[None]], errors: list[str], stderr: bytearray
) -> None:
    """Send the job, then read the worker's reports until it closes its output."""
    assert process.stdin is not None and process.stdout is not None
    await process.stdin.send(job.encode())
    await process.stdin.aclose()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_drain, process, stderr)
        lines = BufferedByteReceiveStream(process.stdout)
        while True:
            try:
                line = await lines.receive_until(b"\n", 1 << 20)
            except (anyio.EndOfStream, anyio.IncompleteRead):
                break
            text = line.decode(errors="replace")
            if not text.startswith(PREFIX):
                continue  # stray output of the compiler
            message = json.loads(text.removeprefix(PREFIX))
            if message["ok"]:
                _log.debug("game ready", seed=message["seed"])
                await ready(int(message["seed"]))
            else:
                errors.append(str(message["error"]))
    await process.wait()


def _remove_temp_dirs(out: Path, pid: int) -> None:
    for leftover in out.glob(temp_prefix(pid) + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _remove_orphans(out: Path) -> None:
    """Remove the temporary directories of workers that no longer run (a parent killed with SIGKILL)."""
    for leftover in out.glob(".tmp-*-*"):
        pid = leftover.name.split("-")[1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drain(process: Process, into: bytearray) -> None:
    assert process.stderr is not None
    async for chunk in process.stderr:
        into.extend(chunk)
        del into[:-_STDERR_TAIL]
