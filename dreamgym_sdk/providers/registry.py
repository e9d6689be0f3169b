"""Choosing a provider from a model string (LiteLLM convention plus local backends).

- ``hf:<path or hub id>``: :class:`~dreamgym_sdk.providers.hf.HFProvider` (transformers, batching);
- ``vllm:<path or hub id>``: :class:`~dreamgym_sdk.providers.vllm.VLLMProvider` (in-process vLLM, GPU);
- ``openai/<name>`` with ``api_base`` set, and ``hosted_vllm/<name>`` (a server you run):
  :class:`~dreamgym_sdk.providers.openai_compat.OpenAICompatProvider`, which keeps pace with a bare
  aiohttp client where LiteLLM spends ~20x its CPU per call (``docs/benchmarks-providers.md``);
- anything else (``openai/gpt-4o-mini``, ``anthropic/...``, ``gemini/...``):
  :class:`~dreamgym_sdk.providers.litellm.LiteLLMProvider`; construct it directly to send a local
  server's traffic through LiteLLM anyway.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from dreamgym_sdk._imports import import_litellm
from dreamgym_sdk.errors import ConfigError, MissingExtraError
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["check_model_string", "get_provider"]


def get_provider(model: str, config: ProviderConfig | None = None, /, **overrides: Any) -> BaseProvider:
    """The provider for ``model``, configured by ``config`` with keyword ``overrides`` applied.

    ```python
    provider = get_provider("openai/qwen2.5-7b", api_base="http://localhost:8000/v1", max_concurrency=128)
    ```

    Args:
        model: a model string (see the table in this module's docs).
        config: the base configuration (defaults when ``None``).
        **overrides: any :class:`ProviderConfig` field, e.g. ``api_base=...``, ``api_key=...``,
            ``cache_dir=...``.

    Raises:
        ConfigError: an empty model string, an unknown or invalid override, or a ``hosted_vllm/`` model
            without a base URL.
        MissingExtraError: the backend's optional dependency is not installed (raised on first use for
            ``hf:`` and ``vllm:``, at once for LiteLLM).
    """
    if not model or not model.strip():
        raise ConfigError("the model string is empty")
    base = config or ProviderConfig()
    try:
        cfg = ProviderConfig.model_validate({**base.model_dump(), **overrides}) if overrides else base
    except ValidationError as exc:
        raise ConfigError(f"invalid provider configuration: {exc}") from exc
    if model.startswith("hf:"):
        from dreamgym_sdk.providers.hf import HFProvider

        return HFProvider(model, cfg)
    if model.startswith("vllm:"):
        from dreamgym_sdk.providers.vllm import VLLMProvider

        return VLLMProvider(model, cfg)
    if model.startswith("hosted_vllm/") or (model.startswith("openai/") and cfg.api_base is not None):
        from dreamgym_sdk.providers.openai_compat import OpenAICompatProvider

        return OpenAICompatProvider(model, cfg)
    from dreamgym_sdk.providers.litellm import LiteLLMProvider

    return LiteLLMProvider(model, cfg)


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LOCAL = ("hf:", "vllm:")


def check_model_string(model: str, *, api_base: str | None = None, bare_directories: bool = False) -> None:
    """Refuse a model string that cannot name a model, before anything loads it (providers load lazily,
    so a typo would otherwise surface at the first call, minutes into a run).

    - ``hf:X`` and ``vllm:X``: ``X`` is an existing path, or a hub id (``org/name``); with
      ``HF_HUB_OFFLINE=1``, one in the local Hugging Face cache.
    - An existing path without a prefix needs ``hf:`` (``bare_directories=True`` accepts it, for commands
      that read a distilled directory themselves).
    - ``provider/name`` (LiteLLM): ``provider`` is one LiteLLM knows, and (without ``api_base``) the API key
      it needs is in the environment, when LiteLLM is installed.

    Raises:
        ConfigError: what is wrong with ``model`` and how to fix it.
    """
    if not model or not model.strip():
        raise ConfigError("the model string is empty")
    prefix = next((p for p in _LOCAL if model.startswith(p)), None)
    if prefix is not None:
        _check_local(model, model.removeprefix(prefix))
        return
    if Path(model).expanduser().exists():
        if bare_directories:
            return
        raise ConfigError(f"model {model!r} is a local path: write hf:{model} to load it with transformers")
    if model.startswith("hosted_vllm/") or api_base is not None:
        return  # a server the user runs: no provider list or key to check
    _check_litellm(model)


def _check_local(model: str, name: str) -> None:
    if Path(name).expanduser().exists():
        return
    if not _HUB_ID.match(name):
        raise ConfigError(f"model {model!r}: no such file or directory {name!r}")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") and not _in_hub_cache(name):
        raise ConfigError(
            f"model {model!r}: {name!r} is neither a local directory nor in the Hugging Face cache, and "
            "HF_HUB_OFFLINE is set (download it first, or give a directory)"
        )


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return True  # cannot tell: let the backend say
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _check_litellm(model: str) -> None:
    try:
        litellm = import_litellm()
    except MissingExtraError:
        return  # the LiteLLM provider names its extra when it is built
    provider = model.split("/", 1)[0] if "/" in model else None
    known = [str(getattr(p, "value", p)) for p in litellm.provider_list]
    if provider is not None and provider not in known:
        close = difflib.get_close_matches(provider, known, n=1)
        hint = f" (did you mean {close[0]}/...?)" if close else ""
        raise ConfigError(
            f"model {model!r}: {provider!r} is not a LiteLLM provider{hint}; local models take hf:<dir> or "
            "vllm:<dir>"
        )
    try:
        found = cast(
            "dict[str, Any]",
            litellm.validate_environment(model=model),  # pyright: ignore[reportUnknownMemberType]
        )
    except Exception:  # an unknown model name: LiteLLM says so at the first call
        return
    missing = [str(key) for key in found.get("missing_keys") or ()]
    keys = [key for key in missing if key.endswith("_KEY")]  # not API_BASE: those have defaults
    if keys:
        raise ConfigError(f"model {model!r} needs {' or '.join(keys)} in the environment (not set)")
