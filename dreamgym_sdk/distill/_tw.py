"""Access to the TextWorld integration, which is installed as ``dreamgym_sdk.integrations.textworld`` but
lives in the top-level ``integrations/`` folder, where static checkers cannot follow it."""

from __future__ import annotations

import importlib
from typing import Any


def textworld_integration() -> Any:
    """The ``dreamgym_sdk.integrations.textworld`` module (it imports ``textworld`` itself only when a
    game is generated or played)."""
    return importlib.import_module("dreamgym_sdk.integrations.textworld")
