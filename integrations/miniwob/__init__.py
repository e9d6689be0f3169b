"""MiniWoB++ web tasks as a real environment family: headless Chromium, AXTree-style text states.

Install with ``pip install 'dreamgym-sdk[miniwob]'`` plus a Chromium and its chromedriver
(``scripts/install-miniwob.sh`` installs Debian's). Importing this module needs ``gymnasium``; playing a
task needs ``miniwob`` (and raises :class:`~dreamgym_sdk.MissingExtraError` naming the extra without it).

```python
from dreamgym_sdk.integrations.miniwob import MiniWoBEnv

async with MiniWoBEnv("click-test-2") as env:
    obs, info = await env.reset(seed=0)
    result = await env.step("click [4]")
```
"""

from dreamgym_sdk._imports import require

require("gymnasium", extra="miniwob", feature="dreamgym_sdk.integrations.miniwob")

from .actions import ACTION_HELP, ActionKind, InvalidActionError, ParsedAction, parse_action  # noqa: E402
from .env import (  # noqa: E402
    ENVIRONMENT,
    TASK_KEY,
    InvalidActionMode,
    MiniWoBEnv,
    RewardMode,
    find_chrome,
    miniwob_task,
)
from .state import MiniWoBStateMapper  # noqa: E402

__all__ = [
    "ACTION_HELP",
    "ENVIRONMENT",
    "TASK_KEY",
    "ActionKind",
    "InvalidActionError",
    "InvalidActionMode",
    "MiniWoBEnv",
    "MiniWoBStateMapper",
    "ParsedAction",
    "RewardMode",
    "find_chrome",
    "is_miniwob_available",
    "miniwob_task",
    "parse_action",
]


def is_miniwob_available() -> bool:
    """Whether the ``miniwob`` package, a Chromium and a chromedriver are all installed."""
    from dreamgym_sdk._imports import is_available

    return is_available("miniwob") and find_chrome() is not None
