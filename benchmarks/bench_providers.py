"""Provider throughput and client CPU, as ratios to a bare aiohttp client measured in the same run.

A fake OpenAI server in a separate process answers every call after a fixed 50 ms with an experience
model's JSON answer; 256 calls are kept in flight. On a machine with two or more cores, the server is
pinned to the last core and the clients to the others, so the two do not trade places on a core.

- ``calls``: each provider path's ``complete()`` against a bare aiohttp loop posting the same request
  (JSON encode, POST, read, JSON decode). Each path runs in fresh processes (8 by default) together
  with the baseline, alternating with it for two rounds per process; every round gives a ratio to the
  baseline's round beside it, and the report shows the median and range of the ratios. Pairing cancels
  drift in the machine's speed; many processes average out what one process's memory layout does to
  its speed (the same client differs by up to 20% between two processes here). Targets: >= 0.9x the
  baseline's calls/s and <= 1.5x its client CPU per call (the process's user+system CPU, all threads,
  divided by calls).
- ``episodes``: 256 concurrent ``DreamEnv`` episodes on a ``ReasoningExperienceModel`` over the default
  provider path (prompt building, the call, parsing and validation, the transition): steps/s and CPU per
  step, against the bare client posting the very request bodies those episodes send.
- ``instructions`` (``--instructions``, needs valgrind): client instructions per call, counted by
  callgrind. Unlike CPU seconds, the count does not move with the machine's load.
- ``hf``: a tiny local model answers 16 concurrent requests (dynamic batching) vs the same 16 one at a
  time. Target: >= 4x throughput.

Prints one JSON object. ``--quick`` is a short smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}.items():
    os.environ.setdefault(_key, _value)

import aiohttp  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from dreamgym_sdk import DreamEnv, ReasoningExperienceModel, Task  # noqa: E402
from dreamgym_sdk._versions import package_versions  # noqa: E402
from dreamgym_sdk.providers import BaseProvider, ChatRequest, ProviderConfig, get_provider  # noqa: E402
from dreamgym_sdk.providers.litellm import LiteLLMProvider  # noqa: E402
from dreamgym_sdk.providers.openai_compat import build_chat_body  # noqa: E402
from dreamgym_sdk.testing.openai_server import OpenAIServer, serve_in_subprocess  # noqa: E402

CONCURRENCY = 256
LATENCY = 0.05
KEY = "bench-key"
ANSWER = json.dumps(
    {
        "reasoning": "The door is locked and the agent has no key, so looking around changes nothing.",
        "next_state": "A small room. A locked door to the north; a key lies on the table.",
        "reward": 0,
        "done": False,
        "success": False,
    }
)
REQUEST = ChatRequest.of("You are a world model.", "open the door", max_tokens=16)
TASK = Task(
    instruction="leave the room",
    environment="bench",
    initial_state="A small room. A locked door to the north; a key lies on the table.",
)
EPISODE_STEPS = 8

PATHS: dict[str, str] = {
    "openai_compat": "get_provider('openai/<name>', api_base=...): the lean aiohttp client (default)",
    "hosted_vllm": "get_provider('hosted_vllm/<name>', api_base=...): routed to the same lean client",
    "openai_sdk": "the same provider with client='openai': openai.AsyncOpenAI on its aiohttp transport",
    "litellm_openai": "LiteLLMProvider('openai/<name>'): litellm.acompletion",
    "litellm_hosted_vllm": "LiteLLMProvider('hosted_vllm/<name>'): litellm.acompletion",
}
SLOW = {"openai_sdk": 4, "litellm_openai": 16, "litellm_hosted_vllm": 16}
"""Paths that cost many times the baseline's CPU run this many times fewer calls per round."""

Call = Callable[[], Awaitable[Any]]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(call: Call, calls: int) -> dict[str, float]:
    """``calls`` calls with CONCURRENCY in flight: calls/s and client CPU ms per call."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    per, extra = divmod(calls, CONCURRENCY)
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(worker(per + (i < extra)) for i in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    return {"per_s": calls / wall, "cpu_ms": cpu / calls * 1000}


@contextlib.asynccontextmanager
async def pinned_server(pin: bool) -> AsyncIterator[tuple[str, bool]]:
    """The fake server in a child process (its base URL), on a core of its own when there are two or more
    (whether it is)."""
    cpus = sorted(os.sched_getaffinity(0)) if pin and hasattr(os, "sched_getaffinity") else []
    pin = len(cpus) >= 2
    if pin:
        os.sched_setaffinity(0, {cpus[-1]})  # the child inherits this
    try:
        async with serve_in_subprocess(latency=LATENCY, content=ANSWER) as base_url:
            if pin:
                os.sched_setaffinity(0, set(cpus[:-1]))
            yield base_url, pin
    finally:
        if pin:
            os.sched_setaffinity(0, set(cpus))


@contextlib.asynccontextmanager
async def bare_client(base_url: str, bodies: list[dict[str, Any]]) -> AsyncIterator[Call]:
    """The baseline: a bare aiohttp loop posting ``bodies`` in turn."""
    url = base_url + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    turn = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def call() -> str:
            nonlocal turn
            body = bodies[turn % len(bodies)]
            turn += 1
            async with session.post(url, data=json.dumps(body), headers=headers) as response:
                return json.loads(await response.read())["choices"][0]["message"]["content"]

        yield call


def make_provider(path: str, base_url: str) -> BaseProvider:
    config = ProviderConfig(api_base=base_url, api_key=SecretStr(KEY), max_concurrency=CONCURRENCY)
    if path == "openai_compat":
        return get_provider("openai/tiny", config)
    if path == "hosted_vllm":
        return get_provider("hosted_vllm/tiny", config)
    if path == "openai_sdk":
        return get_provider("openai/tiny", config, backend_options={"client": "openai"})
    if path == "litellm_openai":
        return LiteLLMProvider("openai/tiny", config)
    if path == "litellm_hosted_vllm":
        return LiteLLMProvider("hosted_vllm/tiny", config)
    raise ValueError(f"unknown path {path!r}")


@contextlib.asynccontextmanager
async def client(path: str, base_url: str) -> AsyncIterator[Call]:
    """``complete()`` of a provider path, or the baseline (``bare_aiohttp``)."""
    if path == "bare_aiohttp":
        body = build_chat_body("tiny", REQUEST, {})
        async with bare_client(base_url, [body]) as call:
            yield call
        return
    async with make_provider(path, base_url) as provider:
        yield lambda: provider.complete(REQUEST)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "per_s": round(statistics.median(r["per_s"] for r in runs), 1),
        "cpu_ms": round(statistics.median(r["cpu_ms"] for r in runs), 3),
    }


def compare(runs: list[dict[str, float]], baseline: list[dict[str, float]]) -> dict[str, Any]:
    """Medians of a path's rounds and of its per-round ratios to the baseline, and the baseline's."""
    throughput = [r["per_s"] / b["per_s"] for r, b in zip(runs, baseline, strict=True)]
    cpu = [r["cpu_ms"] / b["cpu_ms"] for r, b in zip(runs, baseline, strict=True)]
    return {
        **medians(runs),
        "throughput_ratio": round(statistics.median(throughput), 2),
        "throughput_ratio_range": [round(min(throughput), 2), round(max(throughput), 2)],
        "cpu_ratio": round(statistics.median(cpu), 2),
        "cpu_ratio_range": [round(min(cpu), 2), round(max(cpu), 2)],
        "baseline": medians(baseline),
    }


Rounds = dict[str, list[dict[str, float]]]
"""A comparison's measurements: ``{"runs": [...], "baseline": [...]}``, one entry per round each."""


async def alternate(
    work: Callable[[], Awaitable[dict[str, float]]],
    bare: Callable[[], Awaitable[dict[str, float]]],
    rounds: int,
) -> Rounds:
    """``work`` and the baseline ``bare`` one after the other, ``rounds`` times, in alternating order."""
    measured: Rounds = {"runs": [], "baseline": []}
    for r in range(rounds):
        order = [("runs", work), ("baseline", bare)] if r % 2 else [("baseline", bare), ("runs", work)]
        for side, fn in order:
            measured[side].append(await fn())
    return measured


async def path_rounds(base_url: str, path: str, calls: int, rounds: int) -> Rounds:
    """``complete()`` of ``path`` against the baseline posting the same request."""
    async with client(path, base_url) as call, client("bare_aiohttp", base_url) as bare:
        await measure(call, CONCURRENCY)  # warm-up: connections, imports, caches
        await measure(bare, CONCURRENCY)
        return await alternate(
            lambda: measure(call, calls // SLOW.get(path, 1)), lambda: measure(bare, calls), rounds
        )


async def episode_bodies() -> list[dict[str, Any]]:
    """The request bodies of one episode, as the default provider path sends them."""
    async with (
        OpenAIServer(responder=lambda body: ANSWER) as server,
        get_provider("openai/tiny", api_base=server.base_url, api_key=KEY) as provider,
        DreamEnv(ReasoningExperienceModel(provider), max_steps=EPISODE_STEPS) as env,
    ):
        await env.reset(task=TASK)
        for _ in range(EPISODE_STEPS):
            await env.step("look around")
    return [r.body for r in server.requests if r.body is not None]


async def run_episodes(provider: BaseProvider, steps: int) -> dict[str, float]:
    """About ``steps`` steps of CONCURRENCY concurrent episodes: steps/s and client CPU ms per step."""
    model = ReasoningExperienceModel(provider)
    done = 0

    async def worker() -> None:
        nonlocal done
        while done < steps:
            async with DreamEnv(model, max_steps=EPISODE_STEPS) as env:
                await env.reset(task=TASK)
                for _ in range(EPISODE_STEPS):
                    await env.step("look around")
                    done += 1

    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    return {"per_s": done / wall, "cpu_ms": cpu / done * 1000}


async def episode_rounds(base_url: str, steps: int, rounds: int) -> Rounds:
    """Concurrent episodes on the default path against the baseline posting the same bodies."""
    bodies = await episode_bodies()
    async with make_provider("openai_compat", base_url) as provider, bare_client(base_url, bodies) as bare:
        await run_episodes(provider, CONCURRENCY * EPISODE_STEPS)  # warm-up
        await measure(bare, CONCURRENCY)
        return await alternate(lambda: run_episodes(provider, steps), lambda: measure(bare, steps), rounds)


# -- instructions per call, under callgrind --------------------------------------------------------------


async def child_run(path: str, base_url: str, calls: int) -> None:
    """The body of one callgrind child: a warm-up wave, then ``calls`` calls."""
    async with client(path, base_url) as call:
        await measure(call, 64)
        if calls:
            await measure(call, calls)


def callgrind_instructions(path: str, base_url: str, calls: int) -> int:
    """Instructions this script executes for ``path`` with ``calls`` measured calls (callgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        cmd += ["--child", "callgrind", "--path", path, "--url", base_url, "--calls", str(calls)]
        subprocess.run(cmd, check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals")


async def bench_instructions(base_url: str, paths: list[str], calls: int) -> dict[str, Any]:
    """Per-call instructions: the difference of a run with ``calls`` calls and one with none."""
    report: dict[str, Any] = {"calls": calls}
    per_call: dict[str, float] = {}
    for path in ["bare_aiohttp", *paths]:
        n = max(64, calls // SLOW.get(path, 1))
        with_calls = await asyncio.to_thread(callgrind_instructions, path, base_url, n)
        without = await asyncio.to_thread(callgrind_instructions, path, base_url, 0)
        per_call[path] = (with_calls - without) / n
        report[path] = {"instructions_per_call": round(per_call[path])}
        if path != "bare_aiohttp":
            report[path]["ratio"] = round(per_call[path] / per_call["bare_aiohttp"], 3)
    return report


# -- local transformers batching -------------------------------------------------------------------------


async def bench_hf(max_tokens: int, rounds: int) -> dict[str, Any]:
    from dreamgym_sdk.providers.hf import HFProvider
    from dreamgym_sdk.testing.tiny_models import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_model(Path(tmp) / "tiny", ["open the door", "take the key", "go north"] * 10)
        provider = get_provider(f"hf:{path}", backend_options={"max_batch_size": 16})
        assert isinstance(provider, HFProvider)
        requests = [
            ChatRequest.of("world model", f"step {i}: open the door", max_tokens=max_tokens)
            for i in range(16)
        ]
        await provider.complete(requests[0])  # load the model
        sequential: list[float] = []
        batched: list[float] = []
        batches = 0
        for _ in range(rounds):
            start = time.perf_counter()
            for r in requests:
                await provider.complete(r)
            sequential.append(16 / (time.perf_counter() - start))
            before = provider.stats.batches
            start = time.perf_counter()
            await asyncio.gather(*(provider.complete(r) for r in requests))
            batched.append(16 / (time.perf_counter() - start))
            batches = provider.stats.batches - before
        await provider.aclose()
    ratio = max(batched) / max(sequential)
    return {
        "max_tokens": max_tokens,
        "one_at_a_time_req_per_s": round(max(sequential), 1),
        "batched_16_req_per_s": round(max(batched), 1),
        "generate_calls_for_16_batched": batches,
        "ratio": round(ratio, 2),
        "meets_target": ratio >= 4.0,
    }


def in_child(*args: str) -> Any:
    """Run this script with ``args`` in a fresh interpreter; returns the JSON it prints."""
    done = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def pooled(args: list[str], processes: int) -> Rounds:
    """The rounds of ``processes`` child processes, pooled. A process of its own keeps one path's imports
    (LiteLLM's large heap, say) from slowing another's measurement, and several processes average out
    what a process's memory layout does to its speed."""
    measured: Rounds = {"runs": [], "baseline": []}
    for _ in range(processes):
        child_rounds: Rounds = in_child(*args)
        for side in measured:
            measured[side] += child_rounds[side]
    return measured


async def child(args: argparse.Namespace) -> None:
    if args.child == "callgrind":
        await child_run(args.path, args.url, args.calls)
    elif args.child == "episodes":
        print(json.dumps(await episode_rounds(args.url, args.calls, args.rounds)))
    else:
        print(json.dumps(await path_rounds(args.url, args.path, args.calls, args.rounds)))


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--processes", type=int, help="processes per comparison (default 8, quick 1)")
    parser.add_argument("--rounds", type=int, help="rounds per process (default 2)")
    parser.add_argument("--skip-hf", action="store_true", help="HTTP paths only")
    parser.add_argument("--skip-litellm", action="store_true", help="leave out the two LiteLLM paths")
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and client to cores")
    for hidden in ("--child", "--path", "--url"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args)
        return
    calls = 2048 if args.quick else 4096
    processes = args.processes or (1 if args.quick else 8)
    rounds = args.rounds or 2
    paths = [p for p in PATHS if not (args.skip_litellm and p.startswith("litellm"))]
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "setup": {"concurrency": CONCURRENCY, "latency_s": LATENCY, "processes": processes, "rounds": rounds},
        "calls": {},
    }
    async with pinned_server(pin=not args.no_pin) as (base_url, pinned):
        report["setup"]["pinned"] = pinned
        common = ["--url", base_url, "--rounds", str(rounds), "--calls", str(calls)]
        for path in paths:
            measured = await asyncio.to_thread(
                pooled, ["--child", "calls", "--path", path, *common], processes
            )
            figures = compare(measured["runs"], measured["baseline"])
            meets = figures["throughput_ratio"] >= 0.9 and figures["cpu_ratio"] <= 1.5
            report["calls"][path] = {
                "what": PATHS[path],
                "calls": calls // SLOW.get(path, 1),
                **figures,
                "meets_target": meets,
            }
        measured = await asyncio.to_thread(pooled, ["--child", "episodes", *common], processes)
        report["episodes"] = {
            "what": f"{CONCURRENCY} concurrent DreamEnv episodes of {EPISODE_STEPS} steps, "
            "ReasoningExperienceModel on get_provider('openai/<name>', api_base=...)",
            **compare(measured["runs"], measured["baseline"]),
        }
        if args.instructions:
            if shutil.which("valgrind") is None:
                report["instructions"] = "skipped: valgrind is not installed"
            else:
                fast = [p for p in paths if not p.startswith("litellm")]
                report["instructions"] = await bench_instructions(base_url, fast, calls // 4)
    if not args.skip_hf:
        report["hf"] = await bench_hf(max_tokens=16 if args.quick else 32, rounds=1 if args.quick else 3)
    print(json.dumps(report | {"versions": package_versions()}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
