"""Evaluate an existing LangGraph agent against a DreamEnv, without rewriting the agent.

Run: ``python examples/langgraph_agent.py`` (needs ``pip install 'dreamgym-sdk[langgraph]'``).

The agent below is the usual LangGraph tool-calling loop (a model node and a ``ToolNode``). It runs
offline on LangChain's fake chat model, scripted to call the tools; put your real model in
``build_agent`` (e.g. ``ChatOpenAI(model=...)``) and keep everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from dreamgym_sdk import DreamEnv, EpisodeCompleted, EventBus, ExperienceRequest, Task
from dreamgym_sdk.integrations.langgraph import run_agent_episode
from dreamgym_sdk.testing import FunctionExperienceModel


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model standing in for an LLM."""
    if req.action == "open fridge":
        return {"reasoning": "it opens", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    state = "apple in fridge" if won else req.state
    return {"reasoning": "", "next_state": state, "reward": float(won), "done": won, "success": won}


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools; replace it with your real chat model."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self


def build_agent(tools: Sequence[BaseTool]) -> Any:
    """Your agent, as it is: only its tools come from the episode."""
    calls = [
        AIMessage(content="", tool_calls=[{"name": "act", "args": {"action": a}, "id": str(i)}])
        for i, a in enumerate(["open fridge", "put apple in fridge"])
    ]
    model = ScriptedChatModel(messages=iter([*calls, AIMessage(content="The apple is in the fridge.")]))
    bound = model.bind_tools(tools)

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode(list(tools)))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


async def main() -> None:
    async with EventBus() as bus:
        bus.subscribe(EpisodeCompleted, callback=lambda e: print("on the bus:", e.episode.id[:8]))
        env = DreamEnv(
            FunctionExperienceModel(kitchen, initial_state="fridge: closed"), bus=bus, max_steps=10
        )
        episode = await run_agent_episode(build_agent, env, Task(instruction="Put the apple in the fridge."))
    for t in episode.transitions:
        print(f"{t.state!r:18} --{t.action}--> {t.next_state!r} reward={t.reward}")
    print("success:", episode.success)


if __name__ == "__main__":
    anyio.run(main)
