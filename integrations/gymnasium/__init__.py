"""Gymnasium both ways: an async Env as a ``gymnasium.Env`` with text spaces, and a gymnasium env as an Env.

Install the extra with ``pip install 'dreamgym-sdk[gymnasium]'``; importing this module without it raises
:class:`~dreamgym_sdk.MissingExtraError` naming the extra.

```python
from dreamgym_sdk.integrations.gymnasium import EnvToGymnasium, GymnasiumToEnv

gym_env = EnvToGymnasium(DreamEnv(model), task="open the door")   # synchronous gymnasium.Env
env = GymnasiumToEnv(lambda: gymnasium.make("MyTextGame-v0"))      # async dreamgym Env
```
"""

from dreamgym_sdk._imports import require

require("gymnasium", extra="gymnasium", feature="dreamgym_sdk.integrations.gymnasium")

from ._text import TEXT_CHARSET, fit_text, text_space  # noqa: E402
from .from_gymnasium import GymnasiumToEnv, ObservationToText  # noqa: E402
from .to_gymnasium import VOLATILE_INFO_KEYS, EnvToGymnasium  # noqa: E402

__all__ = [
    "TEXT_CHARSET",
    "VOLATILE_INFO_KEYS",
    "EnvToGymnasium",
    "GymnasiumToEnv",
    "ObservationToText",
    "fit_text",
    "text_space",
]
