"""The LangGraph integration, driven by a LangGraph agent (StateGraph + ToolNode) on a fake chat model."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, ExperienceRequest, Task
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.types import Episode

pytest.importorskip("langgraph")

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from dreamgym_sdk.integrations.langgraph import EpisodeTools, run_agent_episode

KITCHEN = "fridge: closed; apple: in hand"


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    if req.action == "open fridge":
        return {"reasoning": "", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    state = "apple in fridge" if won else req.state
    return {"reasoning": "", "next_state": state, "reward": float(won), "done": won, "success": won}


def dream_env(bus: EventBus | None = None) -> DreamEnv:
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state=KITCHEN), bus=bus, max_steps=5)


class ToolCallingFakeModel(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools (it answers from its script whatever the tools)."""

    bound: list[str] = []  # noqa: RUF012

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.extend(tool.name for tool in tools)
        return self


def call(action: str, call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": "act", "args": {"action": action}, "id": call_id}])


def script(*actions: str) -> ToolCallingFakeModel:
    messages = [call(a, str(i)) for i, a in enumerate(actions)]
    return ToolCallingFakeModel(messages=iter([*messages, AIMessage(content="Done.")]))


def react_agent(model: ToolCallingFakeModel, tools: Sequence[BaseTool], *, sync: bool = False) -> Any:
    """The usual LangGraph tool-calling agent: model node, ToolNode, loop until no tool call."""
    bound = model.bind_tools(tools)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    def agent_sync(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent_sync if sync else agent)
    graph.add_node("tools", ToolNode(list(tools)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


async def test_an_existing_agent_plays_a_dream_episode_published_on_the_bus() -> None:
    received: list[Episode] = []
    model = script("look around", "open fridge", "put apple in fridge")
    async with EventBus() as bus:
        bus.subscribe(EpisodeCompleted, callback=lambda e: received.append(e.episode))
        episode = await run_agent_episode(
            lambda tools: react_agent(model, tools),
            dream_env(bus),
            Task(instruction="store the apple"),
            seed=1,
        )
        await bus.join()
    assert model.bound == ["act", "observe"]
    assert [t.action for t in episode.transitions] == ["look around", "open fridge", "put apple in fridge"]
    assert episode.success and episode.total_reward == 1.0 and episode.seed == 1
    assert [e.id for e in received] == [episode.id]


async def test_tool_answers_and_errors_reach_the_model() -> None:
    tools = EpisodeTools(dream_env())
    model = script("open fridge", "put apple in fridge", "open fridge")
    agent = react_agent(model, tools.tools)
    observation = await tools.start("store the apple")
    result = await agent.ainvoke({"messages": [("user", observation)]})
    answers = [m.content for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answers[0] == "fridge: open"
    assert answers[1] == "apple in fridge\n\n[The episode is over: success. Stop acting.]"
    assert "no more actions" in answers[2]  # acting after the end is an error message, not a crash
    assert tools.done and tools.episode is not None and len(tools.episode) == 2
    assert await tools.tools[1].ainvoke({}) == "apple in fridge"
    await tools.aclose()


def test_a_synchronous_agent_runs_the_env_on_the_tools_loop_thread() -> None:
    tools = EpisodeTools(dream_env())
    try:
        assert tools.start_sync("store the apple") == KITCHEN
        agent = react_agent(script("open fridge", "put apple in fridge"), tools.tools, sync=True)
        agent.invoke({"messages": [("user", "store the apple")]})
        assert tools.done and tools.episode is not None and tools.episode.success
    finally:
        tools.close()
        tools.close()


async def test_acting_before_start_is_reported() -> None:
    tools = EpisodeTools(dream_env())
    assert "not started" in await tools.tools[0].ainvoke({"action": "open fridge"})


def test_import_without_langchain_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['langchain_core'] = None\n"
        "try:\n    import dreamgym_sdk.integrations.langgraph\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "dreamgym-sdk[langgraph]" in out
