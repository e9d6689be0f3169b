"""Transitions as stored records: validation, content hashes, embedding text and SQL filters.

Shared by every replay-buffer implementation; nothing here imports an optional dependency.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

from dreamgym_sdk.errors import RecordValidationError
from dreamgym_sdk.types import Provenance, Sample, Source, Transition

__all__ = [
    "IN_CHUNK",
    "TRANSITION_COLUMNS",
    "content_hash",
    "dedupe_by_id",
    "embedding_text",
    "sample_json",
    "sql_filter",
    "transition_from_row",
    "transition_to_row",
    "validate_transitions",
]

TRANSITION_COLUMNS: tuple[str, ...] = (
    "id",
    "task_id",
    "episode_id",
    "step",
    "environment",
    "state",
    "action",
    "reasoning",
    "next_state",
    "reward",
    "terminated",
    "truncated",
    "success",
    "source",
    "provenance_model",
    "provenance_prompt_version",
    "provenance_retrieved_ids",
    "provenance_prompt_tokens",
    "provenance_completion_tokens",
    "provenance_latency_s",
    "provenance_cost_usd",
    "provenance_cached",
    "sample",
)
"""The stored columns that hold a :class:`Transition` (provenance flattened with a ``provenance_`` prefix;
``sample``: the policy's :class:`~dreamgym_sdk.types.Sample` as JSON, or null)."""


def embedding_text(state: str, action: str) -> str:
    """The text embedded for a (state, action) pair: the action first, so truncating a long state keeps it."""
    return f"action: {action}\nstate: {state}"


def content_hash(transition: Transition) -> str:
    """A hash of what a transition says happened: ``(environment, state, action, next_state)``.

    Two transitions with the same hash describe the same step, whatever their ids, episodes or rewards;
    the admission policy uses it to skip duplicate synthetic steps.
    """
    t = transition
    return hash_parts(t.environment, t.state, t.action, t.next_state)


def hash_parts(environment: str, state: str, action: str, next_state: str) -> str:
    """:func:`content_hash` of the parts."""
    text = f"{environment}\x1f{state}\x1f{action}\x1f{next_state}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _label(transition: Any, index: int) -> int | str:
    tid = getattr(transition, "id", None)
    return tid if isinstance(tid, str) and tid else index


def validate_transitions(transitions: Sequence[Transition]) -> None:
    """Check a batch before anything is written; raise :class:`RecordValidationError` on the first bad one.

    Pydantic already validated every :class:`Transition` built normally; this catches what it lets through
    (NaN or infinite numbers, empty ids) and objects built with ``model_construct`` or of the wrong type.
    """
    for index, t in enumerate(transitions):
        if not isinstance(t, Transition):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise RecordValidationError(
                f"expected a Transition, got {type(t).__name__}", record=index, field="<record>"
            )
        label = _label(t, index)
        for name in ("id", "task_id", "episode_id"):
            value = getattr(t, name, None)
            if not isinstance(value, str) or not value:
                raise RecordValidationError("must be a non-empty string", record=label, field=name)
        for name in ("environment", "state", "action", "reasoning", "next_state"):
            if not isinstance(getattr(t, name, None), str):
                raise RecordValidationError("must be a string", record=label, field=name)
        step = getattr(t, "step", None)
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise RecordValidationError("must be an integer >= 0", record=label, field="step")
        reward = getattr(t, "reward", None)
        if not isinstance(reward, int | float) or isinstance(reward, bool) or not math.isfinite(reward):
            raise RecordValidationError(
                f"must be a finite number, got {reward!r}", record=label, field="reward"
            )
        for name in ("terminated", "truncated", "success"):
            if not isinstance(getattr(t, name, None), bool):
                raise RecordValidationError("must be a boolean", record=label, field=name)
        if not isinstance(getattr(t, "source", None), Source):
            raise RecordValidationError("must be a Source", record=label, field="source")
        _validate_provenance(getattr(t, "provenance", None), label)


def _validate_provenance(p: Any, label: int | str) -> None:
    if not isinstance(p, Provenance):
        raise RecordValidationError("must be a Provenance", record=label, field="provenance")
    if not math.isfinite(p.latency_s):
        raise RecordValidationError("must be finite", record=label, field="provenance.latency_s")
    if p.cost_usd is not None and not math.isfinite(p.cost_usd):
        raise RecordValidationError("must be finite or null", record=label, field="provenance.cost_usd")
    for name in ("prompt_tokens", "completion_tokens"):
        value = getattr(p, name)
        if not isinstance(value, int) or value < 0:
            raise RecordValidationError("must be an integer >= 0", record=label, field=f"provenance.{name}")
    if not all(isinstance(i, str) for i in p.retrieved_ids):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise RecordValidationError("must be strings", record=label, field="provenance.retrieved_ids")


def dedupe_by_id(transitions: Iterable[Transition]) -> list[Transition]:
    """Keep the first transition of each id, in order."""
    seen: set[str] = set()
    out: list[Transition] = []
    for t in transitions:
        if t.id not in seen:
            seen.add(t.id)
            out.append(t)
    return out


def transition_to_row(t: Transition) -> dict[str, Any]:
    """A transition as a flat record of :data:`TRANSITION_COLUMNS`."""
    p = t.provenance
    return {
        "id": t.id,
        "task_id": t.task_id,
        "episode_id": t.episode_id,
        "step": t.step,
        "environment": t.environment,
        "state": t.state,
        "action": t.action,
        "reasoning": t.reasoning,
        "next_state": t.next_state,
        "reward": float(t.reward),
        "terminated": t.terminated,
        "truncated": t.truncated,
        "success": t.success,
        "source": t.source.value,
        "provenance_model": p.model,
        "provenance_prompt_version": p.prompt_version,
        "provenance_retrieved_ids": list(p.retrieved_ids),
        "provenance_prompt_tokens": p.prompt_tokens,
        "provenance_completion_tokens": p.completion_tokens,
        "provenance_latency_s": p.latency_s,
        "provenance_cost_usd": p.cost_usd,
        "provenance_cached": p.cached,
        "sample": sample_json(t),
    }


def sample_json(t: Transition) -> str | None:
    """The ``sample`` column's value: the transition's sample as JSON, or ``None``."""
    return None if t.sample is None else t.sample.model_dump_json()


def transition_from_row(row: dict[str, Any]) -> Transition:
    """Rebuild a transition from a flat record written by :func:`transition_to_row` (trusted input)."""
    provenance = Provenance.model_construct(
        model=row["provenance_model"],
        prompt_version=row["provenance_prompt_version"],
        retrieved_ids=tuple(row["provenance_retrieved_ids"] or ()),
        prompt_tokens=row["provenance_prompt_tokens"],
        completion_tokens=row["provenance_completion_tokens"],
        latency_s=row["provenance_latency_s"],
        cost_usd=row["provenance_cost_usd"],
        cached=row["provenance_cached"],
    )
    return Transition.model_construct(
        id=row["id"],
        task_id=row["task_id"],
        episode_id=row["episode_id"],
        step=row["step"],
        environment=row["environment"],
        state=row["state"],
        action=row["action"],
        reasoning=row["reasoning"],
        next_state=row["next_state"],
        reward=row["reward"],
        terminated=row["terminated"],
        truncated=row["truncated"],
        success=row["success"],
        source=Source(row["source"]),
        provenance=provenance,
        sample=Sample.model_validate_json(row["sample"]) if row.get("sample") else None,
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


IN_CHUNK = 5_000
"""Values per ``IN (...)`` query (:func:`sql_in`): longer lists go in chunks of this size."""


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')`` with the values quoted."""
    return f"{column} IN ({', '.join(_quote(v) for v in values)})"


def sql_filter(
    *,
    ids: Sequence[str] | None = None,
    environment: str | None = None,
    task_id: str | None = None,
    episode_id: str | None = None,
    source: Source | None = None,
) -> str | None:
    """A SQL ``WHERE`` clause for the given filters (AND-ed), or ``None`` when no filter is set."""
    parts: list[str] = []
    if ids is not None:
        parts.append(sql_in("id", ids) if ids else "false")
    if environment is not None:
        parts.append(f"environment = {_quote(environment)}")
    if task_id is not None:
        parts.append(f"task_id = {_quote(task_id)}")
    if episode_id is not None:
        parts.append(f"episode_id = {_quote(episode_id)}")
    if source is not None:
        parts.append(f"source = {_quote(Source(source).value)}")
    return " AND ".join(parts) if parts else None


def matches(
    t: Transition,
    *,
    ids: frozenset[str] | None = None,
    environment: str | None = None,
    task_id: str | None = None,
    episode_id: str | None = None,
    source: Source | None = None,
) -> bool:
    """Whether ``t`` passes the filters (the in-memory twin of :func:`sql_filter`)."""
    return (
        (ids is None or t.id in ids)
        and (environment is None or t.environment == environment)
        and (task_id is None or t.task_id == task_id)
        and (episode_id is None or t.episode_id == episode_id)
        and (source is None or t.source == source)
    )


def reward_buckets(counts: dict[float, int], *, max_distinct: int = 10, bins: int = 5) -> dict[str, int]:
    """Counts per reward value, or per equal-width range when there are more than ``max_distinct``."""
    if len(counts) <= max_distinct:
        return {_fmt(value): n for value, n in sorted(counts.items())}
    low, high = min(counts), max(counts)
    width = (high - low) / bins
    out: dict[str, int] = {}
    edges = [low + i * width for i in range(bins)] + [high]
    for i in range(bins):
        closing = "]" if i == bins - 1 else ")"
        out[f"[{_fmt(edges[i])}, {_fmt(edges[i + 1])}{closing}"] = 0
    keys = list(out)
    for value, n in counts.items():
        i = min(int((value - low) / width), bins - 1) if width > 0 else 0
        out[keys[i]] += n
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"
