"""Shared test setup: keep every library offline and quiet."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "RAY_USAGE_STATS_ENABLED": "0",
    "WANDB_MODE": "disabled",
}.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True)
def _restore_sdk_logging() -> Iterator[None]:
    """Commands under test (``dreamgym serve``) call configure_logging; undo it after every test."""
    logger = logging.getLogger("dreamgym_sdk")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
