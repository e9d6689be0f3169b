"""OpenEnv environments as real Envs: a server over its WebSocket protocol, or an OpenEnv object.

No ``openenv`` package is needed for :class:`OpenEnvWebSocketEnv` (it speaks the wire protocol with
aiohttp, a core dependency); :class:`OpenEnvEnv` wraps the ``Environment`` or ``EnvClient`` objects of an
installed ``openenv`` without importing it.

```python
from dreamgym_sdk.integrations.openenv import OpenEnvWebSocketEnv

async with OpenEnvWebSocketEnv("http://127.0.0.1:8000", max_steps=20) as env:
    obs, info = await env.reset(seed=0)
```
"""

from ._base import ActionFromText, ObservationToText, OpenEnvError, render_observation
from .adapter import OpenEnvEnv
from .websocket import OpenEnvWebSocketEnv, text_field_action

__all__ = [
    "ActionFromText",
    "ObservationToText",
    "OpenEnvEnv",
    "OpenEnvError",
    "OpenEnvWebSocketEnv",
    "render_observation",
    "text_field_action",
]
