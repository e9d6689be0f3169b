"""Keep the serve tests independent of tokens set in the developer's environment."""

from __future__ import annotations

import pytest

from dreamgym_sdk.serve import TOKEN_ENV, TOKENS_ENV


@pytest.fixture(autouse=True)
def _no_ambient_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKENS_ENV, raising=False)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
