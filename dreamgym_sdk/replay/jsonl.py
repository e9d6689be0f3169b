"""The JSONL schema for offline trajectories: one transition per line, or one episode per line.

A **transition line** is a :class:`~dreamgym_sdk.Transition` as JSON (what ``export_jsonl`` writes)::

    {"task_id": "t1", "episode_id": "e1", "step": 0, "state": "...", "action": "...",
     "next_state": "...", "reward": 0.0}

Required: ``task_id``, ``episode_id``, ``step``, ``state``, ``action``, ``next_state``, ``reward``.
Optional: ``id`` (default: derived from ``episode_id`` and ``step``, so re-importing a file is idempotent),
``environment``, ``reasoning``, ``terminated``, ``truncated``, ``success``, ``source`` (default: the
importer's, ``"real"``), ``provenance`` (an object of :class:`~dreamgym_sdk.Provenance` fields).

An **episode line** has a ``transitions`` list; each item needs ``action``, ``next_state`` and
``reward``, and inherits the rest from the episode::

    {"episode_id": "e1", "task_id": "t1", "environment": "kitchen", "initial_state": "...",
     "transitions": [{"action": "open fridge", "next_state": "...", "reward": 0.0}, ...]}

Episode keys: ``episode_id`` or ``id`` (default: a hash of the line), ``task_id``, or ``task`` (a
:class:`~dreamgym_sdk.Task` object), or ``instruction`` (the task id is then a hash of it),
``environment``, ``source``, ``initial_state``; ``group``, ``seed``, ``started_at``, ``ended_at`` and
``metadata`` are accepted and ignored, so ``Episode.model_dump_json()`` lines import as they are. In the
transitions, ``step`` defaults to the position and ``state`` to the previous ``next_state`` (the
``initial_state`` for the first one).

Unknown keys are errors. Every error is a :class:`~dreamgym_sdk.errors.RecordValidationError` naming the
line (and id when known) and the field, e.g. ``record 'line 7', field 'transitions[2].reward'``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from pydantic import ValidationError

from dreamgym_sdk.errors import RecordValidationError
from dreamgym_sdk.replay._records import validate_transitions
from dreamgym_sdk.types import Source, Transition

__all__ = ["derived_id", "parse_jsonl_line", "parse_record"]

_EPISODE_KEYS = frozenset(
    {
        "id", "episode_id", "task", "task_id", "instruction", "environment", "source", "initial_state",
        "transitions", "group", "seed", "started_at", "ended_at", "metadata",
    }
)  # fmt: skip
_INHERITED = ("task_id", "episode_id", "environment", "source")


def derived_id(*parts: str) -> str:
    """A deterministic 32-hex id from ``parts`` (used when a record has no id)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<record>"


def _transition(data: dict[str, Any], record: str, prefix: str) -> Transition:
    if "id" not in data and isinstance(data.get("episode_id"), str) and isinstance(data.get("step"), int):
        data = {**data, "id": derived_id(data["episode_id"], str(data["step"]))}
    try:
        transition = Transition.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise RecordValidationError(
            error["msg"], record=record, field=prefix + _field_name(tuple(error["loc"]))
        ) from None
    try:
        validate_transitions([transition])
    except RecordValidationError as exc:
        raise RecordValidationError(
            str(exc).split(": ", 1)[-1], record=record, field=prefix + exc.field
        ) from None
    return transition


def parse_record(
    obj: Any,
    *,
    record: str = "record",
    source: Source = Source.REAL,
    environment: str | None = None,
) -> list[Transition]:
    """The transitions of one parsed JSON record (a transition or an episode, see the module docs).

    Args:
        obj: the decoded JSON value.
        record: how errors name this record (e.g. ``"line 7"``).
        source: the source of records that do not say.
        environment: the environment of records that do not say (``None``: the Transition default).

    Raises:
        RecordValidationError: naming ``record`` (plus the id when known) and the offending field.
    """
    if not isinstance(obj, dict):
        raise RecordValidationError(
            f"expected a JSON object, got {type(obj).__name__}", record=record, field="<record>"
        )
    data = cast(dict[str, Any], obj)
    if "transitions" not in data:
        label = f"{record} (id {data['id']})" if isinstance(data.get("id"), str) else record
        defaults: dict[str, Any] = {"source": source.value}
        if environment is not None:
            defaults["environment"] = environment
        return [_transition({**defaults, **data}, label, "")]
    return _parse_episode(data, record, source, environment)


def _parse_episode(
    data: dict[str, Any], record: str, source: Source, environment: str | None
) -> list[Transition]:
    unknown = sorted(set(data) - _EPISODE_KEYS)
    if unknown:
        raise RecordValidationError("unknown episode key", record=record, field=unknown[0])
    episode_id = data.get("episode_id", data.get("id"))
    if episode_id is None:
        episode_id = derived_id(json.dumps(data, sort_keys=True, default=str))
    if not isinstance(episode_id, str) or not episode_id:
        raise RecordValidationError("must be a non-empty string", record=record, field="episode_id")
    label = f"{record} (episode {episode_id})"
    task = data.get("task")
    if task is not None and not isinstance(task, dict):
        raise RecordValidationError("must be an object", record=label, field="task")
    task_obj = cast(dict[str, Any], task or {})
    task_id = data.get("task_id", task_obj.get("id"))
    instruction = data.get("instruction", task_obj.get("instruction"))
    if task_id is None and isinstance(instruction, str):
        task_id = derived_id(instruction)
    if not isinstance(task_id, str) or not task_id:
        raise RecordValidationError("needs task_id, task or instruction", record=label, field="task_id")
    inherited: dict[str, Any] = {
        "task_id": task_id,
        "episode_id": episode_id,
        "source": data.get("source", source.value),
    }
    env = data.get("environment", task_obj.get("environment", environment))
    if env is not None:
        inherited["environment"] = env
    steps = data["transitions"]
    if not isinstance(steps, list):
        raise RecordValidationError("must be a list", record=label, field="transitions")
    steps = cast(list[Any], steps)
    state = data.get("initial_state")
    out: list[Transition] = []
    for position, step in enumerate(steps):
        prefix = f"transitions[{position}]."
        if not isinstance(step, dict):
            raise RecordValidationError("must be an object", record=label, field=prefix[:-1])
        item: dict[str, Any] = {**inherited, "step": position, **cast(dict[str, Any], step)}
        if "state" not in item:
            if state is None:
                raise RecordValidationError(
                    "missing (and no initial_state or previous next_state)",
                    record=label,
                    field=prefix + "state",
                )
            item["state"] = state
        transition = _transition(item, label, prefix)
        state = transition.next_state
        out.append(transition)
    return out


def parse_jsonl_line(
    line: str, *, number: int, source: Source = Source.REAL, environment: str | None = None
) -> list[Transition]:
    """The transitions of one JSONL line (empty for a blank line); errors name ``line <number>``."""
    text = line.strip()
    if not text:
        return []
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordValidationError(
            f"not valid JSON: {exc.msg}", record=f"line {number}", field="<json>"
        ) from None
    return parse_record(obj, record=f"line {number}", source=source, environment=environment)
