"""The versions a result depends on, recorded in every results file the project publishes (the demo's
``results.json``, each benchmark's JSON report): results move with them (see ``make lock``)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSIONED", "package_versions"]

VERSIONED = ("dreamgym-sdk", "torch", "transformers", "trl", "textworld", "lancedb", "tokenizers")
"""The packages whose versions every results file records."""


def package_versions() -> dict[str, str]:
    """Python's version and those of :data:`VERSIONED` (``"not installed"`` for a missing one)."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
