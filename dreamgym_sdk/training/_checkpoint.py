"""Checkpoint plumbing shared by the backends: atomic directories, RNG state, module weights."""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError

STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"
EXPORT_DIR = "model"


def previous(target: Path) -> Path:
    """Where :func:`atomic_directory` keeps the checkpoint it replaces until the new one is in place."""
    return target.with_name(target.name + ".old")


@contextmanager
def atomic_directory(target: Path, *, keep_previous: bool = False) -> Generator[Path]:
    """Yield a fresh temporary sibling of ``target``; on success it replaces ``target`` by renames.

    A crash leaves either the previous checkpoint or the new one: between the two renames the previous
    one is at ``<target>.old``, which :func:`resolve_checkpoint` falls back to. ``keep_previous`` leaves
    it there, for a caller whose commit point comes later (the loop's ``state.json``) to remove.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        yield tmp
        _fsync_tree(tmp)
        old = previous(target)
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        if old.exists() and not keep_previous:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, durably: a crash leaves the old content or the new, never a mix."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def resolve_checkpoint(target: Path) -> Path:
    """The directory to load: ``target``, or the previous checkpoint a crash left at ``<target>.old``."""
    if (target / STATE_FILE).exists():
        return target
    if (previous(target) / STATE_FILE).exists():
        return previous(target)
    raise FileNotFoundError(f"no checkpoint at {target}")


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())


def write_state(directory: Path, state: dict[str, Any]) -> None:
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True))


def read_state(directory: Path, kind: str) -> dict[str, Any]:
    state = cast(dict[str, Any], json.loads((directory / STATE_FILE).read_text()))
    if state.get("kind") != kind:
        raise ConfigError(f"{directory} holds a {state.get('kind')!r} checkpoint, not {kind!r}")
    return state


def save_weights(module: Any, file: Path) -> None:
    """Save every parameter and buffer of ``module`` (tied weights once) to a safetensors file."""
    safetensors_torch = require("safetensors.torch", extra="hf", feature="checkpoints")
    safetensors_torch.save_model(module, str(file))


def load_weights(module: Any, file: Path) -> None:
    """Load a file written by :func:`save_weights` into ``module`` in place (strict)."""
    safetensors_torch = require("safetensors.torch", extra="hf", feature="checkpoints")
    missing, unexpected = safetensors_torch.load_model(module, str(file), strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"{file} does not match the model: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )


def save_torch(obj: Any, file: Path) -> None:
    torch = require("torch", extra="train", feature="checkpoints")
    torch.save(obj, str(file))


def load_torch(file: Path) -> Any:
    torch = require("torch", extra="train", feature="checkpoints")
    return torch.load(str(file), map_location="cpu", weights_only=True)


def rng_state(generator: Any) -> dict[str, Any]:
    """The RNG states a resumed run needs: Python's, torch's (CPU and CUDA) and the policy's sampler."""
    torch = require("torch", extra="train", feature="checkpoints")
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "torch": torch.get_rng_state(),
        "policy": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: Any) -> None:
    torch = require("torch", extra="train", feature="checkpoints")
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["policy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
