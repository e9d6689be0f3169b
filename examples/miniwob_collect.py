"""Collect real MiniWoB++ episodes in headless Chromium, with a rule-based policy reading the text state.

Run: ``bash scripts/install-miniwob.sh`` once (Chromium + chromedriver), then
``python examples/miniwob_collect.py [episodes.jsonl]`` (needs ``pip install 'dreamgym-sdk[miniwob]'``).
The episodes are what DreamGym's replay buffer is seeded with and its experience model learns from.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from dreamgym_sdk import EpisodeCompleted, EventBus, RolloutRunner, Task
from dreamgym_sdk.integrations.miniwob import MiniWoBEnv, miniwob_task
from dreamgym_sdk.testing import FunctionPolicy
from dreamgym_sdk.types import Transition


def policy(task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]) -> str:
    """Solves click-test-2, enter-text and click-checkboxes from the state's text alone."""
    utterance, *lines = observation.split("\n")

    def ref(pattern: str) -> str | None:
        return next((m.group(1) for line in lines if (m := re.match(rf"\[(\d+)\] {pattern}", line))), None)

    if m := re.match(r'Enter "(.+)" into', utterance):
        box = ref("textbox(?! value)")
        return f'type [{box}] "{m.group(1)}"' if box else f"click [{ref('button')}]"
    if m := re.match(r"Select (.*) and click Submit", utterance):
        wanted = [w.strip() for w in m.group(1).replace(" and ", ", ").split(",") if w.strip()]
        for word in wanted:
            box = ref(f'checkbox "{re.escape(word)}"(?! checked)')
            if box:
                return f"click [{box}]"
        return f"click [{ref('button')}]"
    target = utterance.removeprefix("Click button ").rstrip(".")
    return f"click [{ref('button ' + re.escape(chr(34) + target + chr(34)))}]"


async def main(out: Path | None) -> None:
    episodes = []
    async with EventBus() as bus:
        bus.subscribe(EpisodeCompleted, callback=lambda event: episodes.append(event.episode))
        # One env factory for every task: reset(task=miniwob_task(name)) opens that task's page.
        runner = RolloutRunner(lambda group: MiniWoBEnv(), FunctionPolicy(policy), bus=bus, max_steps=8)
        tasks = [miniwob_task(name) for name in ("click-test-2", "enter-text", "click-checkboxes")]
        await runner.run(tasks, group_size=2, seed=0)
    for episode in episodes:
        first = episode.transitions[0]
        print(f"{episode.task.instruction:18} success={episode.success} steps={len(episode)}")
        print("   " + first.state.replace("\n", "\n   "))
        print("   actions:", [t.action for t in episode.transitions])
    if out is not None:
        await anyio.Path(out).write_text("".join(e.model_dump_json() + "\n" for e in episodes))
        print(f"wrote {len(episodes)} episodes to {out}")


if __name__ == "__main__":
    anyio.run(main, Path(sys.argv[1]) if len(sys.argv) > 1 else None)
