"""Offline data collection: run policies against real environments and store their transitions.

```python
from dreamgym_sdk.collect import ExpertPolicy, JsonlSink, MixturePolicy, RandomAdmissiblePolicy, collect
```

:func:`collect` works with any real :class:`~dreamgym_sdk.Env` and any :class:`TransitionSink` (a replay
buffer, or :class:`JsonlSink` when no database is at hand); the policies here read the expert's plan and
the admissible actions from ``info``, as TextWorld reports them.
"""

from dreamgym_sdk.collect.collector import CollectionResult, CollectionSummary, GameStats, collect
from dreamgym_sdk.collect.sinks import (
    JsonlSink,
    MemorySink,
    SkipKnownEpisodes,
    TransitionSink,
    episode_fingerprint,
    read_jsonl,
)
from dreamgym_sdk.policies.collection import (
    ExpertPolicy,
    Granularity,
    MixturePolicy,
    RandomAdmissiblePolicy,
    admissible_actions,
    expert_action,
)

__all__ = [
    "CollectionResult",
    "CollectionSummary",
    "ExpertPolicy",
    "GameStats",
    "Granularity",
    "JsonlSink",
    "MemorySink",
    "MixturePolicy",
    "RandomAdmissiblePolicy",
    "SkipKnownEpisodes",
    "TransitionSink",
    "admissible_actions",
    "collect",
    "episode_fingerprint",
    "expert_action",
    "read_jsonl",
]
