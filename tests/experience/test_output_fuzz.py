"""Fuzz: thousands of corrupted model outputs, zero crashes, and never an invented reward.

Every input either parses to a valid, consistent ExperienceOutput whose reward is written in the text,
or raises ModelOutputError carrying the input unchanged.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamgym_sdk import ModelOutputError
from dreamgym_sdk.experience import parse_experience_output
from dreamgym_sdk.experience.parsing import RewardMode

BASES: list[dict[str, object]] = [
    {
        "reasoning": "Clicking [12] adds the shoes to the cart.",
        "next_state": 'Cart (1)\n[3] button "Checkout"',
        "reward": 0,
        "done": False,
        "success": False,
    },
    {
        "reasoning": "Checkout completes the purchase.",
        "next_state": "Thank you for your order!",
        "reward": 1,
        "done": True,
        "success": True,
    },
    {
        "reasoning": "There is no element [99].",
        "next_state": "Invalid action: no element [99]",
        "reward": 0,
        "done": False,
        "success": False,
    },
    {
        "reasoning": "Time ran out.",
        "next_state": "Session expired",
        "reward": 0.0,
        "done": True,
        "success": False,
        "note": {"why": ["timeout", None, 3.5]},
    },
    {
        "reasoning": "Ünïcödé ☕ 😀 \\ \" ' {braces} [brackets]",
        "next_state": 'état: «fermé»\n\t[1] link "Accueil"',
        "reward": 1.0,
        "done": True,
        "success": True,
    },
]
JUNK = ["{", "}", "[", "]", '"', "'", ",", ":", "\\", "\n", "null", "NaN", "true", "1e999", "-", ".", "é"]
JUNK += ["😀", "\x00", "\ud800", "```", "{{{{", "]]]]", '{"a":', "reward", '"reward": 1,', "//", "/*"]
JUNK += ["\u202e", "None", "'''", "\t"]
VALUE_SWAPS = ['"1"', '"0.0"', "1.0000001", "2", "-1", "0.5", "true", "null", "[]", "{}", '"yes"', "1e309"]
VALUE_SWAPS += ['"1/1"', "-0.0", "+1", ".0", "1.", "0x1", '"true"', "0", "1"]
_REWARD_VALUE = re.compile(r"(?<=[\"']reward[\"']: )[^,}\n]+|(?<=reward: )[^,}\n]+")
_BOOLEAN = re.compile(r"\b(true|false|True|False)\b")


def render(obj: dict[str, object], rng: random.Random) -> str:
    style = rng.randrange(6)
    if style == 0:
        return json.dumps(obj)
    if style == 1:
        return json.dumps(obj, indent=2, ensure_ascii=False)
    if style == 2:
        return repr(obj)
    if style == 3:
        return (
            "Sure! Here is the transition:\n```json\n" + json.dumps(obj, indent=1) + "\n```\nHope it helps."
        )
    if style == 4:
        return re.sub(r'"(\w+)":', r"\1:", json.dumps(obj))
    return json.dumps(obj, ensure_ascii=False) + "\n" + json.dumps({"extra": "object"})


def corrupt(text: str, rng: random.Random) -> str:
    """Apply one to three random corruptions."""

    def cut(t: str) -> str:
        return t[: rng.randrange(len(t) + 1)]

    def delete(t: str) -> str:
        i = rng.randrange(len(t) + 1)
        return t[:i] + t[i + rng.randint(1, 8) :]

    def insert(t: str) -> str:
        i = rng.randrange(len(t) + 1)
        return t[:i] + rng.choice(JUNK) + t[i:]

    def duplicate(t: str) -> str:
        i, j = sorted((rng.randrange(len(t) + 1), rng.randrange(len(t) + 1)))
        return t[:j] + t[i:j] + t[j:]

    def swap_reward(t: str) -> str:
        return _REWARD_VALUE.sub(rng.choice(VALUE_SWAPS), t, count=1)

    def swap_booleans(t: str) -> str:
        return _BOOLEAN.sub(lambda m: rng.choice([f'"{m.group()}"', "1", "0", "null", m.group()]), t)

    def replace_punctuation(t: str) -> str:
        old, new = rng.choice(['"', "'", ",", ":", "{", "}"]), rng.choice(["", "'", '"', ";"])
        return t.replace(old, new, rng.randint(1, 3))

    def wrap(t: str) -> str:
        return (
            rng.choice(['{"output": ', "[", "{{", "Answer: ", "{'x': "])
            + t
            + rng.choice(["}", "]", "", "}}"])
        )

    def noise(t: str) -> str:
        return "".join(c if rng.random() > 0.02 else chr(rng.randrange(0x20, 0x3000)) for c in t)

    def rename_reward(t: str) -> str:
        return t.replace("reward", rng.choice(["rewrd", "Reward", "reward ", "reward"]))

    def duplicate_key(t: str) -> str:
        return t.replace('"done"', '"done": true, "done"', 1)

    ops: list[Callable[[str], str]] = [
        cut, delete, insert, duplicate, swap_reward, swap_booleans, replace_punctuation, wrap, noise,
        rename_reward, duplicate_key,
    ]  # fmt: skip
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(ops)(text)
    return text


_REWARD = re.compile(r"reward['\"]?\s*:\s*['\"]?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", re.I)


def check(text: str, mode: RewardMode = "outcome") -> bool:
    """Parse ``text`` and check the invariants; True when it parsed."""
    try:
        parsed = parse_experience_output(text, reward_mode=mode)
    except ModelOutputError as exc:
        raw_text = exc.raw_text
        assert raw_text == text
        return False
    out = parsed.output
    assert 0.0 <= out.reward <= 1.0
    assert isinstance(out.next_state, str) and out.next_state.strip()
    assert not out.success or out.done
    if mode == "outcome":
        assert out.reward in (0.0, 1.0)
        assert (out.reward == 1.0) == out.success
    written = [float(v) for v in _REWARD.findall(text)]
    assert any(abs(w - out.reward) <= 1e-6 for w in written), f"reward {out.reward} not written in {text!r}"
    out.model_dump_json()
    return True


def test_thousands_of_corrupted_outputs() -> None:
    rng = random.Random(20251105)
    parsed = failed = 0
    for _ in range(4_000):
        text = corrupt(render(rng.choice(BASES), rng), rng)
        if check(text, rng.choice(["outcome", "outcome", "dense"])):
            parsed += 1
        else:
            failed += 1
    # Both outcomes must be well represented, or the generator is not exercising the parser.
    assert parsed > 400 and failed > 400, (parsed, failed)


def test_uncorrupted_renderings_all_parse() -> None:
    rng = random.Random(7)
    for _ in range(300):
        base = rng.choice(BASES)
        assert check(render(base, rng))


ALPHABET = [*"{}[]\"':,.-+0123456789 \n\\eEtruefalsnNoTFreward_x", "😀"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(ALPHABET), max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    check(text)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_arbitrary_json_never_crashes(value: object) -> None:
    check(
        json.dumps({"next_state": "s", "reward": value, "done": value, "success": value, "reasoning": value})
    )
    check(json.dumps(value))
