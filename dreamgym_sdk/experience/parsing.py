"""Turning raw model text into a validated :class:`ExperienceOutput`, or a :class:`ModelOutputError`.

Models answer in one of two formats (:data:`AnswerFormat`): a JSON object (the default; what hosted models
and structured output handle best) or **sections**, the plain lines retrieved examples are shown in::

    Reasoning: 'eat meal' is admissible here. ...
    Next state:
    location: kitchen
    inventory: nothing
    Reward: 1 | Done: true | Success: true

Sections need no quoting or escaping, which small distilled models get wrong far more often than the
content (:func:`render_answer` writes them, :func:`extract_sections` reads them). Parsing is two steps:

1. **Read** the first JSON object in the text (:func:`extract_json_object`): code fences and prose around
   it are ignored, and only unambiguous syntax repairs are made (trailing commas, single quotes, Python
   ``True``/``False``/``None``, unquoted keys, comments, raw newlines in strings, and closing brackets when
   the text stops between two complete members).
2. **Validate** the fields (:func:`validate_experience`). Every field the prompt asked for must be present
   (``reasoning`` only when reasoning is on). Unambiguous coercions are made and recorded:
   ``"0.0"`` → ``0.0`` for the reward, ``"true"``/``"false"`` and ``1``/``0`` for booleans, a list of
   strings for the reasoning is joined with newlines. The reward is never clamped silently: a value
   outside ``[0, 1]`` is an error unless within ``reward_tolerance`` of the bound.

With outcome-only rewards (the default) the reward must be 0 or 1, and the fields must agree: a reward of 1
needs ``done`` and ``success``; ``success`` needs a reward of 1. An inconsistent answer is **not** repaired
(which field is wrong is ambiguous); it is an error, so the caller re-asks the model. In every mode
``success`` needs ``done``. Nothing here ever supplies a reward the model did not write.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError

from dreamgym_sdk.errors import ModelOutputError
from dreamgym_sdk.experience._json import ExtractedJson, JsonSyntaxError, extract_json_object
from dreamgym_sdk.experience.base import ExperienceOutput

__all__ = [
    "CONTRACT_FIELDS",
    "AnswerFormat",
    "ExtractedJson",
    "ParsedOutput",
    "RewardMode",
    "error_reason",
    "extract_json",
    "extract_sections",
    "outcome_line",
    "parse_experience_output",
    "render_answer",
    "validate_experience",
]

RewardMode = Literal["outcome", "dense"]
"""``"outcome"``: reward is 1 on the successful final step, else 0. ``"dense"``: any reward in [0, 1]."""

AnswerFormat = Literal["json", "sections"]
"""How the model writes its answer: one JSON object, or the plain sections examples are shown in."""

CONTRACT_FIELDS = ("reasoning", "next_state", "reward", "done", "success")
"""The contract's fields, in the order the model writes them."""

_NUMERIC = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_SECTIONS = re.compile(
    r"(?:Reasoning:[ \t]*(?P<reasoning>.*?)\s*\n)?\s*Next state:[ \t]*\n?(?P<next_state>.*?)\n[ \t]*"
    r"Reward:[ \t]*(?P<reward>[^|\n]*?)[ \t]*\|[ \t]*Done:[ \t]*(?P<done>\w+)[ \t]*\|[ \t]*Success:[ \t]*"
    r"(?P<success>\w+)",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class ParsedOutput:
    """A validated experience output and the names of the repairs that were needed to get it."""

    output: ExperienceOutput
    repairs: tuple[str, ...] = ()


def error_reason(error: ModelOutputError) -> str:
    """The message of ``error`` without the attempt count and raw-text suffix that ``ModelOutputError`` adds
    (what a retry shows the model)."""
    return error.reason


def extract_json(
    text: str, *, prefer_keys: tuple[str, ...] = (), finish_reason: str | None = None
) -> ExtractedJson:
    """Read the first JSON object in ``text``, as :func:`extract_json_object`, raising the typed error.

    Args:
        text: raw model output.
        prefer_keys: keys that identify the wanted object among several.
        finish_reason: the provider's finish reason; ``"length"`` is mentioned in the error.

    Raises:
        ModelOutputError: no object could be read; carries ``text`` as ``raw_text``.
    """
    try:
        return extract_json_object(text, prefer_keys=prefer_keys)
    except JsonSyntaxError as exc:
        hint = " (the output was cut off at max_tokens)" if finish_reason == "length" else ""
        raise ModelOutputError(f"no usable JSON object: {exc}{hint}", raw_text=text) from exc


def outcome_line(reward: float, done: bool, success: bool) -> str:
    """The last line of a sections answer (and of a rendered example): ``Reward: 1 | Done: true | ...``."""
    return f"Reward: {reward:g} | Done: {str(done).lower()} | Success: {str(success).lower()}"


def render_answer(
    reasoning: str | None,
    next_state: str,
    reward: float,
    done: bool,
    success: bool,
    *,
    answer_format: AnswerFormat,
) -> str:
    """An answer in ``answer_format`` (``reasoning=None`` leaves it out, as the prompt then asks): what a
    distilled model is trained to write."""
    if answer_format == "sections":
        head = "" if reasoning is None else f"Reasoning: {' '.join(reasoning.split())}\n"
        return f"{head}Next state:\n{next_state}\n{outcome_line(reward, done, success)}"
    fields: dict[str, Any] = {} if reasoning is None else {"reasoning": reasoning}
    value: float | int = int(reward) if float(reward).is_integer() else reward
    fields |= {"next_state": next_state, "reward": value, "done": done, "success": success}
    return json.dumps(fields, ensure_ascii=False)


def extract_sections(text: str, *, finish_reason: str | None = None) -> dict[str, Any]:
    """Read a sections answer (see the module docstring) into its fields: the reward as a number and the
    flags as booleans when they are written as such (else as the text, which validation rejects).

    Raises:
        ModelOutputError: no ``Next state:`` section followed by a ``Reward: … | Done: … | Success: …`` line;
            carries ``text`` as ``raw_text``.
    """
    match = _SECTIONS.search(text)
    if match is None:
        hint = " (the output was cut off at max_tokens)" if finish_reason == "length" else ""
        raise ModelOutputError(
            "no usable answer: expected 'Next state:' then a line 'Reward: <number> | Done: <true|false> | "
            f"Success: <true|false>'{hint}",
            raw_text=text,
        )
    fields: dict[str, Any] = {k: v for k, v in match.groupdict().items() if v is not None}
    if _NUMERIC.fullmatch(fields["reward"]):
        fields["reward"] = float(fields["reward"])
    for flag in ("done", "success"):
        if fields[flag] in ("true", "false"):
            fields[flag] = fields[flag] == "true"
    return fields


def parse_experience_output(
    text: str,
    *,
    answer_format: AnswerFormat = "json",
    finish_reason: str | None = None,
    use_reasoning: bool = True,
    reward_mode: RewardMode = "outcome",
    reward_tolerance: float = 1e-6,
) -> ParsedOutput:
    """Parse, repair and validate one model answer.

    Args:
        text: the raw completion.
        answer_format: the format the model was asked for; a sections answer that holds no sections is
            read as JSON when it contains an object (and the other way round), so either is accepted.
        finish_reason: the provider's finish reason (``"length"`` means the answer was cut off).
        use_reasoning: whether the model was asked for ``reasoning``; when off, the output's reasoning is
            always ``""``.
        reward_mode: ``"outcome"`` (0 or 1, consistent with ``done``/``success``) or ``"dense"``.
        reward_tolerance: how far outside ``[0, 1]`` (or, for outcome rewards, from 0 or 1) a reward may be
            and still be snapped to the bound, e.g. ``1.0000000002``.

    Raises:
        ModelOutputError: the answer is unusable; ``raw_text`` is ``text`` unchanged.
    """
    data: Mapping[str, Any]
    repairs: tuple[str, ...] = ()
    try:
        if answer_format == "sections":
            data = extract_sections(text, finish_reason=finish_reason)
        else:
            extracted = extract_json(text, prefer_keys=CONTRACT_FIELDS, finish_reason=finish_reason)
            data, repairs = extracted.value, extracted.repairs
    except ModelOutputError:
        other = _other_format(text, answer_format)
        if other is None:
            raise
        data, repairs = other
    return validate_experience(
        data,
        raw_text=text,
        repairs=repairs,
        use_reasoning=use_reasoning,
        reward_mode=reward_mode,
        reward_tolerance=reward_tolerance,
    )


def _other_format(text: str, asked: AnswerFormat) -> tuple[Mapping[str, Any], tuple[str, ...]] | None:
    """The answer read in the format that was not asked for, or ``None``."""
    try:
        if asked == "sections" and "{" in text:
            extracted = extract_json(text, prefer_keys=CONTRACT_FIELDS)
            return extracted.value, (*extracted.repairs, "json_answer")
        if asked == "json" and "Next state:" in text:
            return extract_sections(text), ("sections_answer",)
    except ModelOutputError:
        return None
    return None


def validate_experience(
    data: Mapping[str, Any],
    *,
    raw_text: str,
    repairs: tuple[str, ...] = (),
    use_reasoning: bool = True,
    reward_mode: RewardMode = "outcome",
    reward_tolerance: float = 1e-6,
) -> ParsedOutput:
    """Validate the fields of a decoded answer (see the module docstring for the rules).

    Raises:
        ModelOutputError: a field is missing, has the wrong type, is out of range or inconsistent; the
            message lists every problem, so it can be shown to the model on a retry.
    """
    fixes = list(repairs)
    problems: list[str] = []
    wanted = CONTRACT_FIELDS if use_reasoning else CONTRACT_FIELDS[1:]
    missing = [name for name in wanted if name not in data]
    if missing:
        problems.append("missing field(s): " + ", ".join(repr(m) for m in missing))

    reasoning = (
        _reasoning(data.get("reasoning"), fixes, problems) if use_reasoning and "reasoning" in data else ""
    )
    next_state = data.get("next_state")
    if "next_state" in data and (not isinstance(next_state, str) or not next_state.strip()):
        problems.append("'next_state' must be a non-empty string")
    reward = _reward(data["reward"], fixes, problems, reward_tolerance) if "reward" in data else None
    done = _boolean("done", data["done"], fixes, problems) if "done" in data else None
    success = _boolean("success", data["success"], fixes, problems) if "success" in data else None

    if success is True and done is False:
        problems.append("'success' is true but 'done' is false: success ends the episode")
    if reward is not None and reward_mode == "outcome":
        rounded = float(round(reward))
        if abs(reward - rounded) <= reward_tolerance and rounded in (0.0, 1.0):
            if rounded != reward:
                fixes.append("reward_snapped")
            reward = rounded
            if reward == 1.0 and (done is False or success is False):
                problems.append(
                    "inconsistent: outcome-only reward 1 needs done=true and success=true "
                    f"(got done={_js(done)}, success={_js(success)})"
                )
            if reward == 0.0 and success is True:
                problems.append("inconsistent: success=true needs the outcome reward 1, got 0")
        else:
            problems.append(f"'reward' must be 0 or 1 with outcome-only rewards, got {reward!r}")

    if problems or next_state is None or reward is None or done is None or not isinstance(next_state, str):
        raise ModelOutputError("; ".join(problems) or "invalid experience output", raw_text=raw_text)
    extras = {k: v for k, v in data.items() if k not in CONTRACT_FIELDS}
    fields = {
        "reasoning": reasoning,
        "next_state": next_state,
        "reward": reward,
        "done": done,
        "success": bool(success),
        **extras,
    }
    try:
        output = ExperienceOutput.model_validate(fields)
    except (ValidationError, TypeError, ValueError) as exc:
        raise ModelOutputError(f"invalid experience output: {exc}", raw_text=raw_text) from exc
    return ParsedOutput(output, tuple(dict.fromkeys(fixes)))


def _js(value: bool | None) -> str:
    return "missing" if value is None else str(value).lower()


def _reasoning(value: object, fixes: list[str], problems: list[str]) -> str:
    kind = type(value).__name__
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        items = cast(list[Any], value)
        if all(isinstance(v, str) for v in items):
            fixes.append("reasoning_joined")
            return "\n".join(str(v) for v in items)
    problems.append(f"'reasoning' must be a string, got {kind}")
    return ""


def _reward(value: Any, fixes: list[str], problems: list[str], tolerance: float) -> float | None:
    number: float
    if isinstance(value, bool) or value is None:
        problems.append(f"'reward' must be a number, got {_js(value)}")
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _NUMERIC.fullmatch(value):
        number = float(value)
        fixes.append("numeric_string_reward")
    else:
        problems.append(f"'reward' must be a number, got {type(value).__name__} {str(value)[:40]!r}")
        return None
    if not math.isfinite(number):
        problems.append(f"'reward' must be finite, got {number!r}")
        return None
    if number < 0.0 or number > 1.0:
        if -tolerance <= number < 0.0 or 1.0 < number <= 1.0 + tolerance:
            fixes.append("reward_snapped")
            return min(max(number, 0.0), 1.0)
        problems.append(f"'reward' must be within [0, 1], got {number!r}")
        return None
    return number


def _boolean(name: str, value: Any, fixes: list[str], problems: list[str]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        fixes.append("string_booleans")
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        fixes.append("integer_booleans")
        return bool(value)
    problems.append(f"'{name}' must be true or false, got {str(value)[:40]!r}")
    return None
