"""The exception tree of dreamgym-sdk.

Every error the SDK raises on purpose derives from :class:`DreamGymError`, so ``except DreamGymError``
catches all of them. Third-party errors (HTTP clients, LiteLLM, LanceDB, ...) are translated once, in the
adapter that calls the library, and keep the original as ``__cause__``::

    DreamGymError
    ├── ConfigError                    invalid configuration (also a ValueError)
    ├── MissingExtraError              an optional extra is not installed (also an ImportError)
    ├── ConformanceError               a check_* function found a protocol violation (also an AssertionError)
    ├── EnvError                       misuse of an environment
    │   ├── ResetNeededError           step() before reset()
    │   ├── EpisodeFinishedError       step() after the episode terminated or was truncated
    │   └── EnvClosedError             any call after close()
    ├── BusError                       event bus faults
    │   ├── BusClosedError             publish() after the bus was closed
    │   └── SubscriberOverflowError    a subscriber with overflow="error" fell behind
    ├── ExperienceModelError           the experience model could not produce a transition
    │   └── ModelOutputError           model output stayed malformed after repair and retries (keeps raw text)
    ├── ProviderError                  an LLM provider call failed
    │   ├── ProviderTimeoutError       the call exceeded its deadline
    │   ├── RateLimitError             HTTP 429 after retries
    │   ├── ProviderConnectionError    the server could not be reached
    │   └── ProviderStatusError        any other non-success HTTP status after retries
    ├── ReplayBufferError              replay buffer faults
    │   └── RecordValidationError      a record failed validation (names the record and field)
    ├── NothingToTrainError            a training iteration played no usable episode
    └── UntrainableEpisodeError        a trainer got an episode it cannot learn from (no samples, stale, ...)

Every error survives pickling with its attributes (a Ray worker's failure reaches the driver as itself).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BusClosedError",
    "BusError",
    "ConfigError",
    "ConformanceError",
    "DreamGymError",
    "EnvClosedError",
    "EnvError",
    "EpisodeFinishedError",
    "ExperienceModelError",
    "MissingExtraError",
    "ModelOutputError",
    "NothingToTrainError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderStatusError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RecordValidationError",
    "ReplayBufferError",
    "ResetNeededError",
    "SubscriberOverflowError",
    "UntrainableEpisodeError",
]


class DreamGymError(Exception):
    """Raised for every error the SDK reports on purpose; the root of the tree."""

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt without calling __init__ (whose keyword-only arguments pickle cannot pass), with the
        # message arguments and every attribute
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[DreamGymError], args: tuple[Any, ...], state: dict[str, Any]) -> DreamGymError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(DreamGymError, ValueError):
    """Raised when a configuration value is invalid."""


class MissingExtraError(DreamGymError, ImportError):
    """Raised when a feature needs an optional extra that is not installed."""

    def __init__(self, extra: str, package: str, feature: str) -> None:
        self.extra = extra
        self.package = package
        super().__init__(
            f"{feature} needs the optional dependency {package!r}; "
            f"install it with: pip install 'dreamgym-sdk[{extra}]'"
        )


class ConformanceError(DreamGymError, AssertionError):
    """Raised when a ``check_*`` conformance function finds a violation of the protocol."""


class EnvError(DreamGymError):
    """Raised when an environment is used out of order."""


class ResetNeededError(EnvError):
    """Raised when ``step()`` is called before the first ``reset()``."""


class EpisodeFinishedError(EnvError):
    """Raised when ``step()`` is called after the episode terminated or was truncated."""


class EnvClosedError(EnvError):
    """Raised when an environment is used after ``close()``."""


class BusError(DreamGymError):
    """Raised for event bus faults."""


class BusClosedError(BusError):
    """Raised when publishing to, or subscribing on, a closed bus."""


class SubscriberOverflowError(BusError):
    """Raised to a subscriber whose overflow policy is ``error`` once its buffer overflowed."""


class NothingToTrainError(DreamGymError):
    """Raised when a training iteration played no usable episode, so no update could happen (e.g. every
    experience-model answer was unusable); ``LoopConfig(allow_idle_iterations=True)`` makes it a warning."""


class UntrainableEpisodeError(DreamGymError, ValueError):
    """Raised by an RL backend given an episode it cannot train on (``skip_untrainable=True`` in the
    backend's config skips, counts and logs such episodes instead).

    Attributes:
        episode_id: the episode.
        reason: a short tag (``no_samples``, ``stale``, ``not_one_sequence``, ...), the key of the backend's
            ``skipped/<reason>`` metric.
    """

    def __init__(self, message: str, *, episode_id: str, reason: str) -> None:
        self.episode_id = episode_id
        self.reason = reason
        super().__init__(message)


class ExperienceModelError(DreamGymError):
    """Raised when the experience model cannot produce a transition."""


class ModelOutputError(ExperienceModelError):
    """Raised when model output stays malformed after repair and retries.

    Attributes:
        reason: what was wrong with the output, without the raw text.
        raw_text: the last raw completion the model returned, unmodified.
        attempts: how many completions were tried.
    """

    def __init__(self, message: str, *, raw_text: str, attempts: int = 1) -> None:
        self.reason = message
        self.raw_text = raw_text
        self.attempts = attempts
        super().__init__(f"{message} (after {attempts} attempt(s); raw text: {raw_text[:200]!r})")


class ProviderError(DreamGymError):
    """Raised when an LLM provider call fails after retries."""


class ProviderTimeoutError(ProviderError):
    """Raised when a provider call exceeds its deadline."""


class RateLimitError(ProviderError):
    """Raised when a provider keeps answering HTTP 429 after retries."""


class ProviderConnectionError(ProviderError):
    """Raised when a provider's server cannot be reached."""


class ProviderStatusError(ProviderError):
    """Raised when a provider answers a non-success HTTP status after retries.

    Attributes:
        status_code: the HTTP status of the last answer.
    """

    def __init__(self, message: str, *, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(message)


class ReplayBufferError(DreamGymError):
    """Raised for replay buffer faults."""


class RecordValidationError(ReplayBufferError, ValueError):
    """Raised when a record fails validation; names the record and the field.

    Attributes:
        record: the index or id of the offending record.
        field: the name of the offending field.
    """

    def __init__(self, message: str, *, record: int | str, field: str) -> None:
        self.record = record
        self.field = field
        super().__init__(f"record {record!r}, field {field!r}: {message}")
