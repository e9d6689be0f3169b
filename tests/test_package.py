"""The package itself: a pinned public surface, light imports, lazy extras, logging, the CLI."""

from __future__ import annotations

import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

import dreamgym_sdk
from dreamgym_sdk import MissingExtraError, event_from_json, event_to_json
from dreamgym_sdk._imports import require
from dreamgym_sdk.cli import app
from dreamgym_sdk.events import (
    EpisodeCompleted,
    EpisodeStarted,
    Event,
    PolicyUpdated,
    TaskAccepted,
    TaskProposed,
    TaskRejected,
    TransitionRecorded,
)
from dreamgym_sdk.logging import configure_logging, get_logger
from dreamgym_sdk.types import Episode, Provenance, Sample, Source, Task, Transition

PUBLIC = {
    "Action", "Sample", "UntrainableEpisodeError",
    "BusClosedError", "ConfigError", "DreamEnv", "DreamGymError", "Env", "EnvClosedError", "EnvError",
    "Episode", "EpisodeCompleted", "EpisodeFinishedError", "EpisodeStarted", "Event", "EventBus",
    "ExperienceModel", "ExperienceModelError", "ExperienceOutput", "ExperienceRequest", "MissingExtraError",
    "ModelOutputError", "NothingToTrainError", "Overflow", "Policy", "PolicyUpdated", "Prediction",
    "Provenance", "ProviderError", "ReasoningConfig", "ReasoningExperienceModel",
    "RecordedEnv", "RecordingEnv", "ResetNeededError", "RolloutRunner", "Source", "StepResult",
    "SubscriberOverflowError", "Subscription", "SubscriptionStats", "Task", "TaskAccepted", "TaskProposed",
    "TaskRejected", "TrainerBackend", "Transition", "TransitionRecorded", "__version__", "attach_trainer",
    "configure_logging", "event_from_json", "event_to_json", "fork_task", "group_by_task", "run_episode",
}  # fmt: skip


def test_public_surface_is_pinned() -> None:
    assert set(dreamgym_sdk.__all__) >= PUBLIC, "a public name disappeared: deprecate before removing"
    assert set(dreamgym_sdk.__all__) - PUBLIC == set(), "new public name: add it to PUBLIC deliberately"
    for name in dreamgym_sdk.__all__:
        assert hasattr(dreamgym_sdk, name)


def test_names_moved_to_the_textworld_integration_still_resolve_with_a_warning() -> None:
    import dreamgym_sdk.distill as distill
    from dreamgym_sdk.integrations import textworld

    with pytest.warns(
        DeprecationWarning, match=r"moved to dreamgym_sdk\.integrations\.textworld\.collect_textworld"
    ):
        assert distill.collect_textworld is textworld.collect_textworld  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = distill.no_such_name  # pyright: ignore[reportAttributeAccessIssue]


PINNED = json.loads((Path(__file__).parent / "public_api.json").read_text())
"""Each subpackage's ``__all__``: change it deliberately, with a deprecation path for what goes."""


@pytest.mark.parametrize("module", sorted(PINNED))
def test_subpackage_public_surfaces_are_pinned(module: str) -> None:
    names = set(importlib.import_module(f"dreamgym_sdk.{module}").__all__)
    pinned = set(PINNED[module])
    assert names >= pinned, f"dreamgym_sdk.{module} lost {sorted(pinned - names)}: deprecate before removing"
    assert names <= pinned, f"dreamgym_sdk.{module} gained {sorted(names - pinned)}: add to public_api.json"


def test_importing_the_package_changes_no_global_state() -> None:
    modules = ", ".join(
        f"dreamgym_sdk.{m}"
        for m in ("testing", "cli", "curriculum", "replay", "policies", "training", "collect", "demo",
                  "distill", "experience", "serve", "embeddings", "providers", "integrations.textworld")
    )  # fmt: skip
    code = (
        "import logging, os, sys, warnings\n"
        "import aiohttp.web, numpy  # add warning filters of their own when imported\n"
        "def state():\n"
        "    root = logging.getLogger()\n"
        "    return (list(warnings.filters), dict(os.environ), root.level, list(root.handlers),\n"
        "            sys.getrecursionlimit(), logging.getLogger('dreamgym_sdk').handlers)\n"
        f"before = state()\nimport dreamgym_sdk, {modules}\nprint(state() == before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_core_import_stays_light() -> None:
    heavy = ["torch", "transformers", "trl", "lancedb", "litellm", "ray", "vllm", "textworld", "pyarrow"]
    modules = ", ".join(
        f"dreamgym_sdk.{m}"
        for m in ("testing", "cli", "curriculum", "replay", "policies", "training", "collect")
    )
    code = f"import {modules}, sys; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_extra_names_the_extra() -> None:
    with pytest.raises(MissingExtraError, match=r"pip install 'dreamgym-sdk\[nope\]'") as info:
        require("definitely_not_installed_pkg", extra="nope", feature="This feature")
    assert isinstance(info.value, ImportError)


TRANSITION = Transition(
    task_id="t", episode_id="e", step=0, state="s", action="a", reasoning="r", next_state="s2", reward=1.0,
    terminated=True, success=True, source=Source.REAL,
    provenance=Provenance(model="m", prompt_version="v1", retrieved_ids=("x", "y"), prompt_tokens=3),
    sample=Sample(prompt_ids=(1, 2), completion_ids=(3, 4), logprobs=(-0.1, 0.0), allowed=((3, 5), (4,)),
                  temperature=1.0, policy_version=2, text="a"),
)  # fmt: skip
TASK = Task(id="t", instruction="do", metadata={"game": "g.z8"})
EXAMPLES: list[Event] = [
    EpisodeStarted(episode_id="e", task=TASK, source=Source.SYNTHETIC, initial_state="s", group=2),
    TransitionRecorded(transition=TRANSITION),
    EpisodeCompleted(episode=Episode(id="e", task=TASK, initial_state="s", transitions=(TRANSITION,))),
    TaskProposed(task=TASK, reason="variance 0.25"),
    TaskAccepted(task=TASK),
    TaskRejected(task=TASK, reason="duplicate"),
    PolicyUpdated(step=3, metrics={"loss": 0.5}, checkpoint="ckpt/3"),
]


def _all_event_types(cls: type[Event] = Event) -> set[type[Event]]:
    found: set[type[Event]] = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _all_event_types(sub)
    return found


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_json(event: Event) -> None:
    text = event_to_json(event)
    assert json.loads(text)["kind"]
    assert event_from_json(text) == event


def test_examples_cover_every_event_type() -> None:
    # by name: slotted dataclasses leave their pre-slots class object behind in __subclasses__()
    assert {type(e).__name__ for e in EXAMPLES} == {t.__name__ for t in _all_event_types()}


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        EXAMPLES[0].time = 0.0  # type: ignore[misc]


def test_logging_is_silent_by_default_and_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = subprocess.run(
        [sys.executable, "-c", "from dreamgym_sdk.logging import get_logger; "
         "get_logger('dreamgym_sdk.test').warning('silent', api_key='sk-secret-abcdefgh')"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert quiet.stdout == quiet.stderr == ""

    log = get_logger("dreamgym_sdk.test")

    configure_logging("INFO", json=True)
    try:
        log.info(
            "call",
            api_key="sk-secret-abcdefgh",
            prompt="the whole prompt",
            headers={"Authorization": "Bearer abc"},
            note="key sk-another-secret123 inline",
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
        record = json.loads(line)
        assert "sk-secret" not in line and "sk-another" not in line and "Bearer abc" not in line
        assert record["api_key"] == "***"
        assert record["prompt"] == "<redacted 16 chars>"
        assert record["event"] == "call"
        configure_logging("INFO", log_payloads=True)
        log.info("call", prompt="the whole prompt", api_key="sk-secret-abcdefgh")
        text = capsys.readouterr().err
        assert "the whole prompt" in text and "sk-secret" not in text
    finally:
        logger = logging.getLogger("dreamgym_sdk")
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.NullHandler):
                logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        configure_logging.__globals__["_state"]["log_payloads"] = False
    assert structlog.is_configured() is False  # the library never touches global structlog config


def test_cli_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and dreamgym_sdk.__version__ in result.output
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "synthetic experience" in result.output
