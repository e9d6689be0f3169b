"""``dreamgym serve``: an HTTP + WebSocket environment server and its client.

Serve many concurrent, isolated sessions of an environment (typically a :class:`~dreamgym_sdk.DreamEnv`
over one shared experience model and bus) to any process, and use them through :class:`Client`, which is
itself an :class:`~dreamgym_sdk.Env`:

```python
async with EnvServer.for_model(model, ServeConfig(port=0, tokens=["s3cret"])) as server:
    async with Client(server.url, token="s3cret") as env:
        obs, info = await env.reset(task="open the door")
```

The client needs only the core dependencies; the server needs the ``serve`` extra (FastAPI, uvicorn,
websockets), imported when a server starts.
"""

from dreamgym_sdk.serve._transport import ReconnectPolicy
from dreamgym_sdk.serve.admission import admitting_episodes
from dreamgym_sdk.serve.client import TOKEN_ENV, Client, SyncClient
from dreamgym_sdk.serve.config import TOKENS_ENV, ServeConfig, load_config
from dreamgym_sdk.serve.errors import (
    AuthenticationError,
    BadRequestError,
    PayloadTooLargeError,
    RateLimitedError,
    RemoteEnvError,
    ServeError,
    ServerUnavailableError,
    SessionClosedError,
    SessionNotFoundError,
)
from dreamgym_sdk.serve.models import EchoExperienceModel, open_experience_model
from dreamgym_sdk.serve.protocol import ErrorDetail, ObservationResponse, SessionState
from dreamgym_sdk.serve.server import EnvServer
from dreamgym_sdk.serve.sessions import EnvFactory

__all__ = [
    "TOKENS_ENV",
    "TOKEN_ENV",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "EchoExperienceModel",
    "EnvFactory",
    "EnvServer",
    "ErrorDetail",
    "ObservationResponse",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ReconnectPolicy",
    "RemoteEnvError",
    "ServeConfig",
    "ServeError",
    "ServerUnavailableError",
    "SessionClosedError",
    "SessionNotFoundError",
    "SessionState",
    "SyncClient",
    "admitting_episodes",
    "load_config",
    "open_experience_model",
]
