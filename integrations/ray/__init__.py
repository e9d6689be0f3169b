"""Rollouts on a Ray cluster (or on this machine), streamed back onto the driver's event bus.

Install the extra with ``pip install 'dreamgym-sdk[ray]'``. Importing this module does not import Ray;
entering :class:`RayRollouts` does, and raises :class:`~dreamgym_sdk.MissingExtraError` naming the extra
when it is missing.

```python
from dreamgym_sdk.integrations.ray import RayConfig, RayRollouts

async with RayRollouts(env_factory, policy=policy, bus=bus, config=RayConfig(num_workers=4)) as rollouts:
    episodes = await rollouts.run(tasks, group_size=8, seed=0)
```
"""

from .config import RayConfig
from .rollouts import RayRollouts, RolloutStats
from .worker import EnvContext, RolloutWorker

__all__ = ["EnvContext", "RayConfig", "RayRollouts", "RolloutStats", "RolloutWorker", "is_ray_available"]


def is_ray_available() -> bool:
    """Whether the ``ray`` package can be imported."""
    from dreamgym_sdk._imports import is_available

    return is_available("ray")
