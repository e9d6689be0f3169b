"""Game specifications and the metadata of generated TextWorld games.

A spec (:class:`CookingSpec` or :class:`CustomSpec`) plus an integer seed determines a game completely;
:class:`GameInfo` describes a compiled game file and turns it into a :class:`~dreamgym_sdk.Task`.
Nothing here imports ``textworld``: reading a game's metadata only needs its JSON sidecar.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dreamgym_sdk.types import Task

__all__ = [
    "ENVIRONMENT",
    "CookingSpec",
    "CustomSpec",
    "GameInfo",
    "GameSpec",
    "Split",
    "load_games",
]

ENVIRONMENT = "textworld"
"""The ``environment`` name of TextWorld tasks and transitions."""

Split = Literal["train", "valid", "test"]
"""The cooking challenge's food splits: ``valid`` and ``test`` use foods (and preparations) unseen in
``train``."""

_METADATA_KEY = "dreamgym"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def key(self) -> str:
        """A short hash of every setting; names the cached files of this spec."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    def file_stem(self, seed: int) -> str:
        """The file name (without extension) of this spec's game for ``seed``."""
        return f"{self.slug()}-{self.key()}-s{seed}"

    def slug(self) -> str:
        raise NotImplementedError


class CookingSpec(_Spec):
    """Settings of TextWorld's cooking challenge (the *First TextWorld Problems* games).

    The smallest game (one room, one ingredient to fetch) is ``CookingSpec()``; harder ones add
    ingredients, rooms and skills.
    """

    kind: Literal["cooking"] = "cooking"
    split: Split | None = "train"
    """Food split the game is drawn from; ``None`` draws from all foods."""
    recipe: int = Field(default=1, ge=1, le=5)
    """Number of ingredients in the recipe."""
    take: int = Field(default=1, ge=0, le=5)
    """Number of ingredients to find in the world (the others start in the inventory)."""
    go: Literal[1, 6, 9, 12] = 1
    """Number of rooms."""
    open: bool = False
    """Containers and doors start closed and must be opened."""
    cook: bool = False
    """Some ingredients must be cooked (fried, roasted or grilled)."""
    cut: bool = False
    """Some ingredients must be cut (sliced, chopped or diced)."""
    drop: bool = False
    """The inventory has limited capacity."""
    recipe_seed: int = Field(default=0, ge=0)
    """Seed of the recipe shuffling (needs ``take`` > 0 when positive)."""

    @model_validator(mode="after")
    def _check(self) -> CookingSpec:
        if self.take > self.recipe:
            raise ValueError(f"take ({self.take}) cannot exceed recipe ({self.recipe})")
        if self.recipe_seed > 0 and self.take == 0:
            raise ValueError("recipe_seed > 0 needs take > 0")
        return self

    def slug(self) -> str:
        """A readable summary of the settings, e.g. ``cooking-any-r1t1g0-cut``; begins :meth:`file_stem`."""
        skills = "".join(f"-{name}" for name in ("open", "cook", "cut", "drop") if getattr(self, name))
        return f"cooking-{self.split or 'any'}-r{self.recipe}t{self.take}g{self.go}{skills}"

    def settings(self) -> dict[str, Any]:
        """The settings dict that ``textworld.challenges.tw_cooking.cooking.make`` expects."""
        return {
            "recipe": self.recipe,
            "take": self.take,
            "go": self.go,
            "open": self.open,
            "cook": self.cook,
            "cut": self.cut,
            "drop": self.drop,
            "recipe_seed": self.recipe_seed,
            "split": self.split,
        }


class CustomSpec(_Spec):
    """Settings of a custom TextWorld quest (``tw-make custom``): a world of rooms and objects and one
    quest of a given length."""

    kind: Literal["custom"] = "custom"
    world_size: int = Field(default=1, ge=1)
    """Number of rooms."""
    nb_objects: int = Field(default=4, ge=0)
    """Minimum number of objects in the world."""
    quest_length: int = Field(default=2, ge=1)
    """Number of actions the quest needs."""
    quest_breadth: int = Field(default=1, ge=1)
    """Number of sub-quests (1 means a linear quest)."""
    theme: str = "house"
    """Text grammar theme."""

    def slug(self) -> str:
        """A readable summary of the settings, e.g. ``custom-w5-o10-q5b1``; begins :meth:`file_stem`."""
        return f"custom-w{self.world_size}-o{self.nb_objects}-q{self.quest_length}b{self.quest_breadth}"


GameSpec = Annotated[CookingSpec | CustomSpec, Field(discriminator="kind")]
"""Either kind of game spec, discriminated by ``kind`` when read from JSON."""


class _SpecHolder(BaseModel):
    spec: GameSpec


class GameInfo(BaseModel):
    """A compiled TextWorld game: where it is, what it asks and how it was made.

    Build one with :meth:`load` from any ``.z8`` game that TextWorld generated (it reads the ``.json``
    sidecar next to it); :func:`~dreamgym_sdk.integrations.textworld.generate_games` returns them too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    """Stable identifier: a hash of the compiled game file, so the same file always has the same id."""
    path: Path
    """The compiled game (``.z8``); its ``.json`` sidecar is next to it."""
    objective: str
    """The game's objective, the task's instruction."""
    max_score: float
    """The score of a won game."""
    walkthrough: tuple[str, ...] = ()
    """A winning command sequence, when the generator recorded one."""
    uuid: str | None = None
    """TextWorld's own game identifier."""
    spec: GameSpec | None = None
    """The spec the game was generated from (``None`` for games made elsewhere)."""
    seed: int | None = None
    """The generation seed (``None`` for games made elsewhere)."""
    split: str | None = None
    """The cooking split, if any."""

    @classmethod
    def load(cls, path: str | Path) -> GameInfo:
        """Read the metadata of the game at ``path`` (a ``.z8`` file with its ``.json`` sidecar).

        Raises:
            FileNotFoundError: the game or its JSON sidecar is missing.
        """
        game_file = Path(path)
        sidecar = game_file.with_suffix(".json")
        if not sidecar.is_file():
            raise FileNotFoundError(
                f"{sidecar} not found: only games made by TextWorld (a .z8 with its .json) are supported"
            )
        data = json.loads(sidecar.read_text())
        metadata: dict[str, Any] = data.get("metadata") or {}
        ours: dict[str, Any] = metadata.get(_METADATA_KEY) or {}
        max_score = metadata.get("max_score")
        if max_score is None:
            max_score = sum(quest.get("reward", 0) for quest in data.get("quests", []))
        spec = _SpecHolder.model_validate({"spec": ours["spec"]}).spec if "spec" in ours else None
        settings: dict[str, Any] = metadata.get("settings") or {}
        split = ours.get("split") or settings.get("split")
        return cls(
            id=f"tw-{_file_digest(game_file)[:16]}",
            path=game_file.resolve(),
            objective=str(data.get("objective") or ""),
            max_score=float(max_score),
            walkthrough=tuple(metadata.get("walkthrough") or ()),
            uuid=metadata.get("uuid"),
            spec=spec,
            seed=ours.get("seed"),
            split=split,
        )

    def to_task(self, *, initial_state: str | None = None) -> Task:
        """The task of this game: id :attr:`id`, instruction :attr:`objective`, environment
        ``"textworld"``; the metadata names the game file, split, seed and spec."""
        return Task(
            id=self.id,
            instruction=self.objective,
            environment=ENVIRONMENT,
            initial_state=initial_state,
            metadata={
                "game_path": str(self.path),
                "split": self.split,
                "seed": self.seed,
                "spec": None if self.spec is None else self.spec.model_dump(mode="json"),
                "uuid": self.uuid,
                "max_score": self.max_score,
            },
        )


def load_games(directory: str | Path) -> list[GameInfo]:
    """Every TextWorld game (``*.z8`` with a ``.json`` sidecar) in ``directory``, sorted by path."""
    return [
        GameInfo.load(path)
        for path in sorted(Path(directory).glob("*.z8"))
        if path.with_suffix(".json").is_file()
    ]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dreamgym_metadata(spec: CookingSpec | CustomSpec, seed: int) -> dict[str, Any]:
    """What generation stores under ``metadata["dreamgym"]`` in a game's JSON sidecar."""
    split = spec.split if isinstance(spec, CookingSpec) else None
    return {_METADATA_KEY: {"spec": spec.model_dump(mode="json"), "seed": seed, "split": split}}
