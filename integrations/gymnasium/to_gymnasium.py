""":class:`EnvToGymnasium`: any async :class:`~dreamgym_sdk.Env` as a synchronous ``gymnasium.Env``."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, SupportsFloat

from anyio.from_thread import BlockingPortal

from dreamgym_sdk._imports import require
from dreamgym_sdk.env import Env, TaskLike
from dreamgym_sdk.errors import EnvClosedError
from dreamgym_sdk.types import Task

from .._sync import LoopThread

require("gymnasium", extra="gymnasium", feature="dreamgym_sdk.integrations.gymnasium")
import gymnasium  # noqa: E402

from ._text import fit_text, text_space  # noqa: E402

__all__ = ["VOLATILE_INFO_KEYS", "EnvToGymnasium"]

VOLATILE_INFO_KEYS: frozenset[str] = frozenset({"episode_id", "task_id", "transition_id", "provenance"})
"""Info entries that differ on every run (fresh ids, measured latencies); left out of gymnasium's
``info`` by default so that seeded episodes are reproducible, as gymnasium's ``check_env`` demands.
:attr:`EnvToGymnasium.last_info` keeps them."""

_SEED_BOUND = 2**31 - 1


class EnvToGymnasium(gymnasium.Env[str, str]):
    r"""A synchronous ``gymnasium.Env`` with text spaces over an async :class:`~dreamgym_sdk.Env`.

    ```python
    env = EnvToGymnasium(DreamEnv(model, max_steps=10), task="put the apple in the fridge")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("open fridge")
    env.close()
    ```

    **The event loop.** Gymnasium is synchronous; the wrapped env is async. Every call runs on one event
    loop in a background thread that this object starts on first use and stops in :meth:`close` (pass
    ``portal=`` to share one loop between several envs, e.g. a ``SyncVectorEnv``). Because the loop is
    always the same, components that bind to a loop (HTTP sessions of providers) work, and the env can be
    driven from code that is itself inside a running event loop.

    **Seeds.** ``reset(seed=...)`` seeds gymnasium's ``np_random``; every reset then draws the wrapped
    env's seed (and the task, when several are given) from it, so a seeded sequence of episodes is
    reproducible and an unseeded one is not.

    **Spaces.** Both spaces are :class:`gymnasium.spaces.Text` over every printable character of
    Unicode's basic multilingual plane plus newline and tab. Observations are made members of the
    observation space: characters outside it become ``\ufffd``, and text longer than
    ``max_observation_chars`` is cut with ``…``.

    **Info.** The wrapped env's ``info``, deep-copied, without :data:`VOLATILE_INFO_KEYS` (fresh ids and
    latencies), unless ``drop_info_keys=()``; the full last ``info`` is :attr:`last_info`.

    Stepping a finished episode raises :class:`~dreamgym_sdk.EpisodeFinishedError` (no silent reset).

    Args:
        env: the env to wrap, or a zero-argument factory making it (what ``gymnasium.make`` kwargs need).
        task: the task of every episode; a sequence of tasks is sampled from with ``np_random``;
            ``reset(options={"task": ...})`` overrides it for one episode.
        max_observation_chars: the observation space's maximum length.
        max_action_chars: the action space's maximum length.
        render_mode: ``"ansi"`` makes :meth:`render` return the current observation, or ``None``.
        drop_info_keys: ``info`` entries to leave out.
        portal: an anyio blocking portal to run on instead of an own loop thread.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 - gymnasium's API

    def __init__(
        self,
        env: Env | Callable[[], Env],
        *,
        task: TaskLike | Sequence[TaskLike] | None = None,
        max_observation_chars: int = 65_536,
        max_action_chars: int = 4_096,
        render_mode: str | None = None,
        drop_info_keys: Collection[str] = VOLATILE_INFO_KEYS,
        portal: BlockingPortal | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}")
        self.env: Env = env if isinstance(env, Env) else env()
        self._tasks: tuple[TaskLike, ...] = (
            () if task is None else (task,) if isinstance(task, str | Task) else tuple(task)
        )
        self._observation_text = text_space(max_observation_chars)
        self.observation_space = self._observation_text
        self.action_space = text_space(max_action_chars, min_length=1)
        self.render_mode = render_mode
        self.drop_info_keys = frozenset(drop_info_keys)
        self._loop = LoopThread(portal, name="dreamgym-gymnasium")
        self._observation = ""
        self.last_info: dict[str, Any] = {}
        """The wrapped env's full ``info`` from the last ``reset``/``step``."""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode; ``options["task"]`` picks its task, other options go to the wrapped env."""
        super().reset(seed=seed)
        self._check_open()
        options = dict(options or {})
        task = options.pop("task", None)
        if task is None and self._tasks:
            task = self._tasks[int(self.np_random.integers(len(self._tasks)))]
        env_seed = int(self.np_random.integers(_SEED_BOUND))
        obs, info = self._loop.call(self._reset, task, env_seed, options or None)
        self._observation = fit_text(obs, self._observation_text)
        self.last_info = info
        return self._observation, self._public(info)

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        """Take one step with a text action."""
        self._check_open()
        result = self._loop.call(self.env.step, str(action))
        self._observation = fit_text(result.observation, self._observation_text)
        self.last_info = result.info
        return (
            self._observation,
            float(result.reward),
            bool(result.terminated),
            bool(result.truncated),
            self._public(result.info),
        )

    def render(self) -> str | None:  # pyright: ignore[reportIncompatibleMethodOverride]
        """The current observation when ``render_mode="ansi"``, else ``None``."""
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        """Close the wrapped env and stop the loop thread; idempotent."""
        if self._loop.closed:
            return
        try:
            self._loop.call(self.env.close)
        finally:
            self._loop.close()

    async def _reset(
        self, task: TaskLike | None, seed: int, options: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        return await self.env.reset(task=task, seed=seed, options=options)

    def _check_open(self) -> None:
        if self._loop.closed:
            raise EnvClosedError("this environment is closed")

    def _public(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in info.items() if k not in self.drop_info_keys})
