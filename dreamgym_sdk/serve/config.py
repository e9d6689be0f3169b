"""The environment server's configuration: one pydantic model, loadable from TOML or YAML.

Every ``dreamgym serve`` flag maps to a field of :class:`ServeConfig` of the same name (``--max-steps``
is ``max_steps``; ``--replay`` is ``replay.uri``). A config file holds the fields at the top level or under
a ``[serve]`` table.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from dreamgym_sdk import config_files
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.experience.reasoning import ReasoningConfig
from dreamgym_sdk.grounding import ReplaySection
from dreamgym_sdk.providers.config import ProviderConfig
from dreamgym_sdk.replay.admission import AdmissionPolicy

__all__ = ["TOKENS_ENV", "ServeConfig", "load_config"]

TOKENS_ENV = "DREAMGYM_SERVE_TOKENS"
"""Environment variable holding bearer tokens, separated by commas or whitespace."""


class ServeConfig(BaseModel):
    """Everything ``dreamgym serve`` needs; defaults are safe (loopback only, authentication on).

    Tokens are the union of ``tokens``, the lines of ``tokens_file`` and the ``DREAMGYM_SERVE_TOKENS``
    environment variable (see :meth:`resolved_tokens`). They are secrets: never logged, never echoed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    """Interface to listen on; the default accepts local connections only."""
    port: int = Field(default=8000, ge=0, le=65535)
    """TCP port; ``0`` picks a free one (read it back from ``EnvServer.url``)."""
    tokens: tuple[SecretStr | str, ...] = ()
    """Bearer tokens accepted by the server (prefer ``tokens_file`` or the environment variable); plain
    strings are stored as ``SecretStr``, so they never show in a repr or a dump."""
    tokens_file: Path | None = None
    """A file with one bearer token per line (blank lines and ``#`` comments ignored)."""
    allow_unauthenticated: bool = False
    """Serve without authentication (all clients share one identity); only for local experiments."""

    model: str = "testing:echo"
    """Experience model: a provider model string (``openai/gpt-4o-mini``, ``hosted_vllm/...``,
    ``hf:<path>``) wrapped in the reasoning experience model, or ``testing:echo``, an instant offline
    model that echoes the action and ends the episode on ``done``."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server for the experience model's provider."""
    api_key: SecretStr | str | None = None
    """API key of the experience model's provider (stored as ``SecretStr``); when unset the provider reads
    its usual environment variable."""
    provider: ProviderConfig = Field(default_factory=ProviderConfig)
    """How the experience model is called (``[provider]``): timeouts, retries, response cache, backend
    options, and ``max_concurrency``, the model calls in flight at once, which defaults to
    ``max_sessions`` here (a session waits for one call at a time, so the server never throttles its own
    sessions; lower it to respect a hosted API's limits). ``api_base`` and ``api_key`` above take
    precedence."""
    reasoning: ReasoningConfig = Field(default_factory=ReasoningConfig)
    """The reasoning experience model's prompt, retrieval, sampling and retry settings (``[reasoning]``;
    for a distilled model its card's prompt settings apply, as in ``dreamgym train``)."""
    replay: ReplaySection = Field(default_factory=ReplaySection)
    """The LanceDB buffer of real transitions the experience model retrieves from (``[replay]``, or
    ``--replay URI``); a distilled model without one is grounded by the transitions stored with it."""
    admission: AdmissionPolicy | None = None
    """Store the episodes the server's sessions complete in the ``replay`` buffer, under this policy
    (``[admission]``; ``{}`` for the defaults: real episodes whole, synthetic ones capped to half the buffer);
    ``None`` stores nothing. Needs ``replay.uri``; a missing buffer is created."""
    games: Path | None = None
    """Serve the real TextWorld games of this directory instead of the experience model: a client names a
    game by its task id at reset (``GameInfo.to_task()``; ``dreamgym collect tasks`` lists them), and plays
    the server's copy of it (:class:`~dreamgym_sdk.integrations.textworld.GameCatalogEnv`)."""
    max_steps: int = Field(default=30, ge=1)
    """Episodes are truncated after this many steps."""
    environment: str = "dream"
    """Environment name recorded on tasks given as plain instructions and on transitions."""

    max_sessions: int = Field(default=10_000, ge=1)
    """Open sessions allowed on the server; more are refused with ``capacity_reached`` (503)."""
    max_sessions_per_token: int | None = Field(default=None, ge=1)
    """Open sessions one token may hold; more are refused with ``too_many_sessions`` (429)."""
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest HTTP request body or WebSocket message, in bytes; larger ones get 413."""
    rate_limit: float | None = Field(default=None, gt=0)
    """Requests (HTTP requests and WebSocket messages) per second allowed per token, on average;
    ``None`` disables rate limiting."""
    rate_burst: int | None = Field(default=None, ge=1)
    """Requests a token may make at once above the average rate; defaults to ``ceil(rate_limit)``."""
    idle_timeout: float = Field(default=600.0, gt=0)
    """Seconds without a request after which a session is closed and its environment released."""
    shutdown_grace: float = Field(default=30.0, ge=0)
    """On shutdown, seconds in-flight requests get to finish before they are cancelled."""
    ws_ping_interval: float | None = Field(default=20.0, gt=0)
    """Seconds between WebSocket keep-alive pings sent by the server; ``None`` disables them."""
    access_log: bool = False
    """Log every HTTP request line (uvicorn's access log; it never contains headers)."""
    log_level: str = "info"
    """Level of the server's own log records (``debug``, ``info``, ``warning``, ...)."""

    @field_validator("tokens", mode="after")
    @classmethod
    def _hide_tokens(cls, tokens: tuple[SecretStr | str, ...]) -> tuple[SecretStr | str, ...]:
        return tuple(SecretStr(t) if isinstance(t, str) else t for t in tokens)

    @field_validator("api_key", mode="after")
    @classmethod
    def _hide_key(cls, key: SecretStr | str | None) -> SecretStr | str | None:
        return SecretStr(key) if isinstance(key, str) else key

    @model_validator(mode="before")
    @classmethod
    def _calls_follow_sessions(cls, data: Any) -> Any:
        """``provider.max_concurrency`` defaults to ``max_sessions``."""
        if not isinstance(data, dict):
            return data
        fields = cast(dict[str, Any], data)
        provider: Any = fields.get("provider", {})
        if isinstance(provider, ProviderConfig):
            provider = provider.model_dump(exclude_unset=True)
        if isinstance(provider, dict) and "max_concurrency" not in provider:
            sessions = fields.get("max_sessions", cls.model_fields["max_sessions"].default)
            fields = fields | {"provider": {**cast(dict[str, Any], provider), "max_concurrency": sessions}}
        return fields

    @model_validator(mode="after")
    def _check(self) -> ServeConfig:
        if self.api_base is not None and not self.api_base.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http(s) URL")
        if not self.model.strip():
            raise ValueError("model must not be empty")
        if self.admission is not None and self.replay.uri is None:
            raise ValueError("admission needs replay.uri: the buffer completed episodes are stored in")
        return self

    @property
    def burst(self) -> int:
        """The effective token-bucket size (``rate_burst``, or ``ceil(rate_limit)``)."""
        if self.rate_burst is not None:
            return self.rate_burst
        return max(1, math.ceil(self.rate_limit or 1))

    def resolved_tokens(self) -> tuple[str, ...]:
        """Every accepted token in clear text (config, token file and environment), deduplicated.

        Raises:
            ConfigError: no token is configured and ``allow_unauthenticated`` is off, or the token file
                cannot be read.
        """
        found = [_reveal(t).strip() for t in self.tokens]
        if self.tokens_file is not None:
            try:
                lines = self.tokens_file.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read tokens_file {str(self.tokens_file)!r}: {exc.strerror}"
                ) from exc
            found += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        found += os.environ.get(TOKENS_ENV, "").replace(",", " ").split()
        tokens = tuple(dict.fromkeys(t for t in found if t))
        if not tokens and not self.allow_unauthenticated:
            raise ConfigError(
                "no bearer token configured: set DREAMGYM_SERVE_TOKENS, pass --tokens-file or --token, "
                "or --allow-unauthenticated for a local experiment"
            )
        return tokens

    def api_key_value(self) -> str | None:
        """The provider API key in clear text, for the provider only."""
        return None if self.api_key is None else _reveal(self.api_key)


def _reveal(secret: SecretStr | str) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def load_config(path: Path | None = None, **overrides: Any) -> ServeConfig:
    """A :class:`ServeConfig` from a TOML or YAML file (its ``[serve]`` table, or the whole file) with
    ``overrides`` applied on top.

    ``None`` overrides are ignored, so CLI flags that were not given keep the file's values.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is invalid (the message names the
            field and never contains a secret's value).
    """
    return config_files.load_config(ServeConfig, path, overrides, section="serve", what="serve configuration")
