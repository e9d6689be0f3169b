"""Check a core-only install (``pip install .``, no extras): run it with that venv's python.

1. every module of the package imports, or raises the MissingExtraError that names its extra;
2. the README's first-episode example runs;
3. each heavy feature, used without its extra, raises MissingExtraError naming the extra.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import dreamgym_sdk
from dreamgym_sdk.errors import MissingExtraError

README = Path(__file__).resolve().parents[1] / "README.md"
failures: list[str] = []


def modules() -> None:
    imported = skipped = 0
    for info in pkgutil.walk_packages(dreamgym_sdk.__path__, "dreamgym_sdk."):
        try:
            importlib.import_module(info.name)
            imported += 1
        except MissingExtraError:
            skipped += 1
        except Exception as exc:
            failures.append(f"import {info.name}: {type(exc).__name__}: {exc}")
    print(f"modules: {imported} import, {skipped} name their missing extra")


def first_episode() -> None:
    section = README.read_text().split("## A first episode", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no code block under '## A first episode' in the README"
    exec(compile(code.group(1), "README.md", "exec"), {"__name__": "__readme__"})
    print("README first episode: ran")


def needs(extra: str, use: Callable[[], Any]) -> None:
    try:
        result = use()
        if inspect.iscoroutine(result):
            anyio.run(lambda: result)
    except MissingExtraError as exc:
        if exc.extra != extra:
            failures.append(f"{use.__doc__}: names extra {exc.extra!r}, not {extra!r}")
    except Exception as exc:
        failures.append(f"{use.__doc__}: {type(exc).__name__}: {exc} (not a MissingExtraError)")
    else:
        failures.append(f"{use.__doc__}: ran without the {extra!r} extra")


def extras() -> None:
    from dreamgym_sdk import EventBus
    from dreamgym_sdk.providers import ChatRequest, get_provider
    from dreamgym_sdk.replay import LanceDBReplayBuffer
    from dreamgym_sdk.serve import EnvServer, ServeConfig

    async def provider(model: str) -> None:
        async with get_provider(model) as p:
            await p.complete(ChatRequest.of(None, "hi"))

    async def hf() -> None:
        """the hf: provider"""
        await provider("hf:some/model")

    async def litellm() -> None:
        """a LiteLLM model string"""
        await provider("anthropic/claude-3-5-haiku-latest")

    async def vllm() -> None:
        """the vllm: provider"""
        await provider("vllm:some/model")

    async def lancedb() -> None:
        """LanceDBReplayBuffer"""
        async with LanceDBReplayBuffer("/tmp/dreamgym-core-check.lance") as buffer:
            await buffer.add([])

    def policy() -> Any:
        """HFPolicy.from_pretrained"""
        from dreamgym_sdk.policies import HFPolicy

        return HFPolicy.from_pretrained("some/model")

    async def textworld() -> None:
        """TextWorldEnv"""
        from dreamgym_sdk.integrations.textworld import TextWorldEnv

        game = Path(tempfile.mkdtemp()) / "game.z8"
        game.touch()
        game.with_suffix(".json").write_text("{}")
        async with TextWorldEnv(game) as env:
            await env.reset()

    async def serve() -> None:
        """EnvServer"""
        async with EnvServer(lambda: None, ServeConfig(allow_unauthenticated=True)):  # pyright: ignore
            pass

    async def ray() -> None:
        """RayRollouts"""
        from dreamgym_sdk.integrations.ray import RayRollouts

        async with RayRollouts(lambda: None, policy=lambda *a: "x", bus=EventBus()):  # pyright: ignore
            pass

    for extra, use in [
        ("hf", hf),
        ("litellm", litellm),
        ("vllm", vllm),
        ("lancedb", lancedb),
        ("hf", policy),
        ("textworld", textworld),
        ("serve", serve),
        ("ray", ray),
    ]:
        needs(extra, use)
    print(f"extras: {8 - len(failures)} of 8 features name their missing extra")


if __name__ == "__main__":
    modules()
    first_episode()
    extras()
    if failures:
        print("core-only install check failed:", *failures, sep="\n  ")
        sys.exit(1)
    print("core-only install: ok")
