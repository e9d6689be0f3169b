"""LLM providers behind one protocol, chosen by model string."""

from dreamgym_sdk.providers.base import ChatMessage, ChatRequest, ChatResponse, Provider, Usage

__all__ = ["ChatMessage", "ChatRequest", "ChatResponse", "Provider", "Usage"]
