"""A DreamEnv (or any Env) as TRL's ``environment_factory``: episodes become tool-calling rollouts.

```python
from dreamgym_sdk.integrations.trl import TRLEnvironmentFactory

factory = TRLEnvironmentFactory(lambda: DreamEnv(model, max_steps=10), tasks=tasks, group_size=4)
trainer = GRPOTrainer(model, args=GRPOConfig(num_generations=4, ...), environment_factory=factory)
```

This module imports nothing from TRL (it follows TRL's duck-typed protocol); training with
``GRPOTrainer`` needs ``pip install 'dreamgym-sdk[train]'``.
"""

from .environment import DEFAULT_PROMPT, TextActionEnvironment, ToolEnvironment, TRLEnvironmentFactory

__all__ = ["DEFAULT_PROMPT", "TRLEnvironmentFactory", "TextActionEnvironment", "ToolEnvironment"]
