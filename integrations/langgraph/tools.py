"""A DreamEnv episode as LangChain tools, and one LangGraph agent run as a recorded episode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from anyio.from_thread import BlockingPortal

from dreamgym_sdk._imports import require
from dreamgym_sdk.env import Env, RecordedEnv, RecordingEnv, TaskLike
from dreamgym_sdk.errors import EnvClosedError, EpisodeFinishedError, ResetNeededError
from dreamgym_sdk.types import Episode, StepResult, Task

from .._sync import LoopThread

require("langchain_core", extra="langgraph", feature="dreamgym_sdk.integrations.langgraph")
from langchain_core.messages import HumanMessage  # noqa: E402
from langchain_core.runnables import Runnable  # noqa: E402
from langchain_core.tools import BaseTool, StructuredTool, ToolException  # noqa: E402

__all__ = ["DEFAULT_PROMPT", "EpisodeTools", "run_agent_episode"]

DEFAULT_PROMPT = "{instruction}\n\nCurrent state:\n{observation}"
"""The user message :func:`run_agent_episode` starts the agent with."""

_ACT_DESCRIPTION = (
    "Take an action in the environment and observe its result. "
    "The argument is the action as a short command, for example 'open fridge'."
)
_OBSERVE_DESCRIPTION = "Look at the current state of the environment without acting."


class EpisodeTools:
    """One episode of an :class:`~dreamgym_sdk.Env` (typically a DreamEnv) as LangChain tools.

    ```python
    tools = EpisodeTools(DreamEnv(model, bus=bus))
    observation = await tools.start("put the apple in the fridge")
    agent = build_my_agent(tools.tools)            # any LangGraph / LangChain agent taking tools
    await agent.ainvoke({"messages": [("user", observation)]})
    episode = tools.episode                        # recorded, and published on the env's bus
    ```

    The tools are ``act(action)``, which steps the env and returns the new state (with a note when the
    episode ends), and ``observe()``, which returns the current state. Acting after the episode ended,
    or before :meth:`start`, is answered with an error message for the model (a ``ToolException``
    handled by the tool), not an exception in your agent.

    **Event loops.** Async agents (``ainvoke``) call the tools' coroutines on their own loop. Sync agents
    (``invoke``) call the sync variants, which run the env on a background loop thread owned by this
    object (stopped by :meth:`close`); use one style per ``EpisodeTools``, since an env's components stay
    on the loop they first ran on.

    Args:
        env: the env to play; wrapped in :class:`~dreamgym_sdk.RecordingEnv` when it does not record.
        act_name: the name of the acting tool.
        act_description: its description, as the model reads it.
        portal: an anyio blocking portal for the sync variants instead of an own loop thread.
    """

    def __init__(
        self,
        env: Env,
        *,
        act_name: str = "act",
        act_description: str = _ACT_DESCRIPTION,
        portal: BlockingPortal | None = None,
    ) -> None:
        self.env: RecordedEnv = env if isinstance(env, RecordedEnv) else RecordingEnv(env)
        self._loop = LoopThread(portal, name="dreamgym-langgraph")
        self._observation: str | None = None
        self._last: StepResult | None = None
        self.tools: list[BaseTool] = [
            StructuredTool.from_function(
                func=self._act_sync,
                coroutine=self.act,
                name=act_name,
                description=act_description,
                handle_tool_error=True,
            ),
            StructuredTool.from_function(
                func=self._observe,
                coroutine=self._observe_async,
                name="observe",
                description=_OBSERVE_DESCRIPTION,
                handle_tool_error=True,
            ),
        ]
        """The tools to give the agent."""

    async def start(self, task: TaskLike, *, seed: int | None = None) -> str:
        """Reset the env on ``task`` and return the initial observation."""
        observation, _info = await self.env.reset(task=task, seed=seed)
        self._observation, self._last = observation, None
        return observation

    def start_sync(self, task: TaskLike, *, seed: int | None = None) -> str:
        """:meth:`start` for synchronous agents (runs on the background loop thread)."""

        async def start() -> str:
            return await self.start(task, seed=seed)

        return self._loop.call(start)

    async def act(self, action: str) -> str:
        """Take ``action`` in the environment and return the new state."""
        if self._observation is None:
            raise ToolException("the episode has not started")
        try:
            result = await self.env.step(action)
        except (EpisodeFinishedError, ResetNeededError, EnvClosedError) as exc:
            raise ToolException(f"no more actions: {exc}") from exc
        self._observation, self._last = result.observation, result
        if not result.done:
            return result.observation
        ending = (
            ("success" if result.info.get("success") else "failure") if result.terminated else "step limit"
        )
        return f"{result.observation}\n\n[The episode is over: {ending}. Stop acting.]"

    @property
    def done(self) -> bool:
        """Whether the episode has ended."""
        return self._last is not None and self._last.done

    @property
    def episode(self) -> Episode | None:
        """The episode so far (``None`` before :meth:`start`)."""
        return self.env.episode

    async def aclose(self) -> None:
        """Close the env (async agents)."""
        await self.env.close()

    def close(self) -> None:
        """Close the env through the loop thread and stop it (sync agents); idempotent."""
        if self._loop.closed:
            return
        try:
            self._loop.call(self.env.close)
        finally:
            self._loop.close()

    def _act_sync(self, action: str) -> str:
        return self._loop.call(self.act, action)

    def _observe(self) -> str:
        if self._observation is None:
            raise ToolException("the episode has not started")
        return self._observation

    async def _observe_async(self) -> str:
        return self._observe()


async def run_agent_episode(
    build_agent: Callable[[Sequence[BaseTool]], Runnable[Any, Any]],
    env: Env,
    task: TaskLike,
    *,
    seed: int | None = None,
    prompt_template: str = DEFAULT_PROMPT,
    config: dict[str, Any] | None = None,
) -> Episode:
    """Run an existing agent for one episode against ``env`` and return the recorded episode.

    ``build_agent(tools)`` builds the agent as you do today, with the episode's tools in place of your
    real ones (e.g. ``create_agent(model, tools)`` or your own ``StateGraph`` with a ``ToolNode``). The
    agent is invoked with one user message, ``prompt_template`` filled with the task's instruction and the
    initial observation, under the input key ``messages``. The episode is published on the env's bus (a
    DreamEnv made with ``bus=``), where a trainer or a replay buffer picks it up.

    Args:
        build_agent: makes the agent from the tools.
        env: the env to play (closed at the end).
        task: the task.
        seed: the reset seed.
        prompt_template: the first user message, with ``{instruction}`` and ``{observation}``.
        config: the LangChain run config (e.g. ``{"recursion_limit": 50}``).
    """
    tools = EpisodeTools(env)
    try:
        observation = await tools.start(task, seed=seed)
        the_task = task if isinstance(task, Task) else None
        instruction = the_task.instruction if the_task is not None else str(task)
        message = HumanMessage(prompt_template.format(instruction=instruction, observation=observation))
        agent = build_agent(tools.tools)
        await agent.ainvoke({"messages": [message]}, config=config)  # pyright: ignore[reportArgumentType]
    finally:
        await tools.aclose()
    episode = tools.episode
    assert episode is not None
    return episode
