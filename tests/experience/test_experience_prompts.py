"""Prompt building: sections, ablation switches, history windowing, budgets, versions, schema."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dreamgym_sdk import ExperienceRequest, Source, Task, Transition
from dreamgym_sdk.experience import ReasoningConfig, build_messages, experience_schema
from dreamgym_sdk.experience.prompts import (
    PromptTemplate,
    build_initial_state_messages,
    clip_text,
    prompt_version,
    render_history,
    window_history,
)
from dreamgym_sdk.replay import SearchHit

TASK = Task(id="t1", instruction="buy red shoes under $50", environment="shop")


def step(i: int, state: str | None = None, action: str | None = None) -> Transition:
    return Transition(
        task_id="t1", episode_id="e1", step=i, environment="shop",
        state=state if state is not None else f"state-{i}", action=action or f"action-{i}",
        next_state=f"state-{i + 1}", reward=0.0,
    )  # fmt: skip


def example(i: int, reasoning: str = "") -> SearchHit:
    t = Transition(
        id=f"real-{i}", task_id="t0", episode_id="r", step=0, environment="shop", state=f"ex-state-{i}",
        action=f"ex-action-{i}", reasoning=reasoning, next_state=f"ex-next-{i}", reward=0.0,
        source=Source.REAL,
    )  # fmt: skip
    return SearchHit(t, score=1.0 - i / 10)


def request(history: int = 3) -> ExperienceRequest:
    hist = tuple(step(i) for i in range(history))
    return ExperienceRequest(
        task=TASK, state=f"state-{history}", action="click [12]", history=hist, step=history
    )


def user_text(config: ReasoningConfig, retrieved: list[SearchHit] | None = None, history: int = 3) -> str:
    messages = build_messages(request(history), retrieved if retrieved is not None else [example(1)], config)
    assert [m.role for m in messages] == ["system", "user"]
    return messages[1].content


def test_full_prompt_has_every_section_in_order() -> None:
    messages = build_messages(request(), [example(1, "because")], ReasoningConfig())
    system, user = messages[0].content, messages[1].content
    order = ["## Task", "## Similar transitions", "## History", "## Current state", "## Action"]
    positions = [user.index(h) for h in order]
    assert positions == sorted(positions)
    assert "buy red shoes under $50" in user
    assert "ex-state-1" in user and "Reasoning: because" in user
    assert "state-3" in user.split("## Current state")[1]
    assert "click [12]" in user.split("## Action")[1]
    assert '"reasoning"' in system and system.index('"reasoning"') < system.index('"next_state"')
    assert "outcome-only" in system and "Invalid action" in system
    assert "{reward_rule}" not in system and "{output_format}" not in system


def test_history_switch() -> None:
    assert "## History" not in user_text(ReasoningConfig(use_history=False))
    assert "## History" in user_text(ReasoningConfig())
    assert "## History" not in user_text(ReasoningConfig(), history=0)


def test_retrieval_switch_and_k() -> None:
    assert "## Similar" not in user_text(ReasoningConfig(use_retrieval=False))
    assert "## Similar" not in user_text(ReasoningConfig(), retrieved=[])
    text = user_text(ReasoningConfig(k=2), retrieved=[example(i) for i in range(1, 6)])
    assert "ex-state-1" in text and "ex-state-2" in text and "ex-state-3" not in text


def test_reasoning_switch() -> None:
    config = ReasoningConfig(use_reasoning=False)
    messages = build_messages(request(), [example(1, "because")], config)
    assert '"reasoning"' not in messages[0].content
    assert "no explanation" in messages[0].content
    assert "because" not in messages[1].content, "without reasoning, examples show no reasoning either"


def test_dense_reward_rule() -> None:
    system = build_messages(request(), [], ReasoningConfig(reward_mode="dense"))[0].content
    assert "progress" in system and "outcome-only" not in system


def test_build_messages_is_pure() -> None:
    config = ReasoningConfig()
    hits = [example(1), example(2)]
    assert build_messages(request(), hits, config) == build_messages(request(), hits, config)
    transitions_only = build_messages(request(), [h.transition for h in hits], config)
    assert transitions_only == build_messages(request(), hits, config)


def test_prompt_version_names_the_ablations() -> None:
    assert prompt_version(ReasoningConfig()) == "exp-v1"
    config = ReasoningConfig(use_history=False, use_reasoning=False, reward_mode="dense")
    assert prompt_version(config) == "exp-v1/no-history,no-reasoning,dense"
    custom = ReasoningConfig(template=PromptTemplate(version="mine-3"), use_retrieval=False)
    assert prompt_version(custom) == "mine-3/no-retrieval"


def test_schema_is_strict_and_reasoning_first() -> None:
    schema = experience_schema()
    assert list(schema["properties"]) == ["reasoning", "next_state", "reward", "done", "success"]
    assert schema["required"] == list(schema["properties"])
    assert schema["additionalProperties"] is False
    assert "reasoning" not in experience_schema(use_reasoning=False)["properties"]


def test_window_keeps_first_and_last_n() -> None:
    history = [step(i) for i in range(10)]
    win = window_history(history, 3)
    assert win.first is not None and win.first.step == 0
    assert [t.step for t in win.recent] == [7, 8, 9]
    assert win.elided == 6
    short = window_history(history[:3], 3)
    assert short.first is None and [t.step for t in short.recent] == [0, 1, 2] and short.elided == 0
    four = window_history(history[:4], 3)
    assert four.first is not None and four.elided == 0
    only_first = window_history(history, 0)
    assert only_first.first is not None and only_first.recent == () and only_first.elided == 9
    assert window_history([], 5).first is None


def test_render_history_marks_elided_steps() -> None:
    text = render_history([step(i) for i in range(10)], window=3, max_chars=10_000)
    assert text.startswith("Step 0")
    assert "[... 6 earlier step(s) omitted ...]" in text
    assert [line for line in text.splitlines() if line.startswith("Step ")] == [
        "Step 0", "Step 7", "Step 8", "Step 9",
    ]  # fmt: skip


def test_render_history_budget_drops_oldest_recent_steps_first() -> None:
    history = [step(i, state=f"s{i} " + "x" * 300) for i in range(6)]
    text = render_history(history, window=5, max_chars=1_000)
    assert len(text) <= 1_000
    steps = [line for line in text.splitlines() if line.startswith("Step ")]
    assert steps[0] == "Step 0" and steps[-1] == "Step 5"
    omitted = int(text.split("[... ")[1].split(" ")[0])
    assert omitted + len(steps) == 6


def test_render_history_clips_a_single_huge_step() -> None:
    text = render_history([step(0, state="y" * 50_000)], window=3, max_chars=2_000)
    assert len(text) <= 2_000 and "characters omitted" in text


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3_000), min_size=1, max_size=12),
    window=st.integers(min_value=0, max_value=12),
    budget=st.integers(min_value=200, max_value=8_000),
)
def test_render_history_never_exceeds_budget(sizes: list[int], window: int, budget: int) -> None:
    history = [step(i, state="z" * n) for i, n in enumerate(sizes)]
    text = render_history(history, window=window, max_chars=budget)
    assert len(text) <= budget
    last_shown = len(sizes) - 1 if window > 0 else 0
    assert f"Step {last_shown}\n" in text or "characters omitted" in text


def test_clip_text() -> None:
    assert clip_text("short", 10) == "short"
    clipped = clip_text("a" * 100 + "b" * 100, 120)
    assert len(clipped) <= 120 and clipped.startswith("a") and clipped.endswith("b")
    assert len(clip_text("c" * 100, 5)) == 5


def test_examples_are_clipped() -> None:
    long = SearchHit(example(1).transition.model_copy(update={"state": "q" * 10_000}), 0.9)
    text = user_text(ReasoningConfig(example_max_chars=500), retrieved=[long])
    assert "q" * 501 not in text and "characters omitted" in text


def test_initial_state_messages() -> None:
    task = Task(instruction="cook dinner", environment="kitchen", metadata={"difficulty": "hard"})
    messages = build_initial_state_messages(task, ReasoningConfig(), [example(1)])
    assert '"initial_state"' in messages[0].content
    assert "cook dinner" in messages[1].content and "kitchen" in messages[1].content
    assert '"difficulty": "hard"' in messages[1].content and "ex-state-1" in messages[1].content
    no_retrieval = build_initial_state_messages(task, ReasoningConfig(use_retrieval=False), [example(1)])
    assert "ex-state-1" not in no_retrieval[1].content
