"""LLM providers behind one protocol, chosen by model string.

``get_provider("openai/gpt-4o-mini")`` (LiteLLM), ``get_provider("openai/<name>", api_base=...)``
(any OpenAI-compatible server), ``get_provider("hf:<path>")`` (local transformers with dynamic batching),
``get_provider("vllm:<path>")`` (in-process vLLM). Backends with heavy dependencies are imported only
when their provider is created.
"""

from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider, Usage
from dreamgym_sdk.providers.cache import ResponseCache
from dreamgym_sdk.providers.config import ProviderConfig, RetryPolicy
from dreamgym_sdk.providers.registry import check_model_string, get_provider

__all__ = [
    "BaseProvider",
    "ChatMessage",
    "ChatRequest",
    "ChatResponse",
    "Provider",
    "ProviderConfig",
    "ResponseCache",
    "RetryPolicy",
    "Usage",
    "check_model_string",
    "get_provider",
]
