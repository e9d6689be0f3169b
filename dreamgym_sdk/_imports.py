"""Lazy imports of optional dependencies, with an error naming the extra to install."""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType
from typing import Any

from dreamgym_sdk.errors import MissingExtraError


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module exists but one of *its* imports failed: show that error as it is
        raise MissingExtraError(extra, module.split(".")[0], feature) from exc


def is_available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def import_litellm() -> ModuleType:
    """Import LiteLLM offline-safe and quiet (its price map from the package, no telemetry)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm: Any = require("litellm", extra="litellm", feature="LiteLLM models")
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm
