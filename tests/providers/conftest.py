"""Fixtures for provider tests: a live fake OpenAI server, fast retry settings, a tiny local model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dreamgym_sdk.testing.openai_server import OpenAIServer


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    corpus = ["open the door", "take the key", "you are in a room with a locked door", "north south east"]
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus * 5)
