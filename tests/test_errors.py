"""Every public error class survives pickling as itself, with its message and attributes, so a failure in
a Ray worker or a subprocess reaches the caller unchanged."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

import dreamgym_sdk.serve.errors
import dreamgym_sdk.training.sequences
from dreamgym_sdk.errors import DreamGymError
from dreamgym_sdk.integrations import openenv

ARGUMENTS: dict[str, Any] = {
    "message": "it broke",
    "raw_text": '{"next_state": ',
    "attempts": 3,
    "status_code": 503,
    "record": "row 7",
    "field": "reward",
    "extra": "train",
    "package": "trl",
    "feature": "GRPOBackend",
    "type": "rate_limited",
    "status": 429,
    "retry_after": 1.5,
    "episode_id": "ep-1",
    "reason": "stale",
    "code": "E42",
}


def every_error_class() -> list[type[DreamGymError]]:
    assert dreamgym_sdk.serve.errors and dreamgym_sdk.training.sequences and openenv  # their classes load
    found: list[type[DreamGymError]] = []
    pending: list[type[DreamGymError]] = [DreamGymError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return sorted(set(found), key=lambda c: c.__qualname__)


def make(cls: type[DreamGymError]) -> DreamGymError:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):  # Exception's own (*args)
        return cls("it broke")
    return cls(**{p.name: ARGUMENTS[p.name] for p in parameters if p.kind is not p.VAR_KEYWORD})


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: c.__qualname__)
def test_error_survives_pickling(cls: type[DreamGymError]) -> None:
    error = make(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error) and copy.args == error.args
    assert copy.__dict__ == error.__dict__


def test_every_public_error_is_covered() -> None:
    names = {c.__name__ for c in every_error_class()}
    assert {"ModelOutputError", "MissingExtraError", "ProviderStatusError", "RateLimitedError",
            "SessionClosedError", "UntrainableEpisodeError", "OpenEnvError"} <= names  # fmt: skip
