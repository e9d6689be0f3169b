"""TextWorld as a real environment: game generation, an async Env, the abstract-state mapper and the
admissible commands of an abstract state; and TextWorld's side of distillation: collecting and exploring
games for an experience model's data, replaying episodes for their ground truth, rule-based annotation.

Install the extra with ``pip install 'dreamgym-sdk[textworld]'``. Importing this module does not import
``textworld``; generating or playing a game does, and raises :class:`~dreamgym_sdk.MissingExtraError`
naming the extra when it is missing.

```python
from dreamgym_sdk.integrations.textworld import CookingSpec, TextWorldEnv, generate_games

games = await generate_games(CookingSpec(split="train"), "tw_games", seeds=range(3))
async with TextWorldEnv(games[0], max_steps=30) as env:
    obs, info = await env.reset()
```
"""

from .actions import GameKind, admissible_commands, task_admissible
from .catalog import GameCatalogEnv
from .distill import (
    PolicyMix,
    annotate_textworld,
    collect_textworld,
    collection_policy,
    explore_textworld,
    references_from,
    textworld_tasks,
)
from .env import ObservationMode, TextWorldEnv
from .games import (
    ENVIRONMENT,
    CookingSpec,
    CustomSpec,
    GameInfo,
    GameSpec,
    Split,
    load_games,
)
from .generate import game_path, generate_games
from .ground_truth import replay_ground_truth
from .rules import RULES_VERSION, RuleBasedAnnotator, explain_step
from .state import (
    DEFAULT_STATES,
    AbstractState,
    Entity,
    Exit,
    Fact,
    TextWorldStateMapper,
)
from .tasks import tasks_with_initial_states

__all__ = [
    "DEFAULT_STATES",
    "ENVIRONMENT",
    "RULES_VERSION",
    "AbstractState",
    "CookingSpec",
    "CustomSpec",
    "Entity",
    "Exit",
    "Fact",
    "GameCatalogEnv",
    "GameInfo",
    "GameKind",
    "GameSpec",
    "ObservationMode",
    "PolicyMix",
    "RuleBasedAnnotator",
    "Split",
    "TextWorldEnv",
    "TextWorldStateMapper",
    "admissible_commands",
    "annotate_textworld",
    "collect_textworld",
    "collection_policy",
    "explain_step",
    "explore_textworld",
    "game_path",
    "generate_games",
    "is_textworld_available",
    "load_games",
    "references_from",
    "replay_ground_truth",
    "task_admissible",
    "tasks_with_initial_states",
    "textworld_tasks",
]


def is_textworld_available() -> bool:
    """Whether the ``textworld`` package can be imported."""
    from dreamgym_sdk._imports import is_available

    return is_available("textworld")
