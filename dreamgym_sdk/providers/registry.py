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

from typing import Any

from pydantic import ValidationError

from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["get_provider"]


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
