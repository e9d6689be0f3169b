"""DreamEnv episodes as tools for LangGraph (and any LangChain tool-calling) agents.

Train or evaluate an existing agent against the synthetic environment without rewriting it: give it
the episode's tools instead of its real ones. Install with ``pip install 'dreamgym-sdk[langgraph]'``;
importing this module without ``langchain-core`` raises :class:`~dreamgym_sdk.MissingExtraError`.

```python
from dreamgym_sdk.integrations.langgraph import run_agent_episode

episode = await run_agent_episode(lambda tools: build_my_agent(tools), DreamEnv(model, bus=bus), task)
```
"""

from dreamgym_sdk._imports import require

require("langchain_core", extra="langgraph", feature="dreamgym_sdk.integrations.langgraph")

from .tools import DEFAULT_PROMPT, EpisodeTools, run_agent_episode  # noqa: E402

__all__ = ["DEFAULT_PROMPT", "EpisodeTools", "run_agent_episode"]
