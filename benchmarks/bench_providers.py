"""Provider throughput and client CPU per call, as ratios to baselines measured in the same run.

HTTP: a fake OpenAI server in a separate process answers every call after a fixed latency (50 ms); 256
calls are kept in flight. Each provider path is compared with a bare aiohttp client posting the same
requests (json encode, POST, read, json decode): calls/s and client CPU ms per call (this process's
user+system CPU, all threads included, divided by calls). Targets: >= 0.9x the baseline's throughput and
<= 1.5x its CPU per call.

HF: a tiny local model answers 16 concurrent requests (dynamic batching) vs the same 16 one at a time.
Target: >= 4x throughput.

Prints one JSON object. ``--quick`` is a short smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
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

from dreamgym_sdk.providers import BaseProvider, ChatRequest, ProviderConfig, get_provider  # noqa: E402
from dreamgym_sdk.providers.litellm import LiteLLMProvider  # noqa: E402
from dreamgym_sdk.testing.openai_server import serve_in_subprocess  # noqa: E402

CONCURRENCY = 256
LATENCY = 0.05
REQUEST = ChatRequest.of("You are a world model.", "open the door", max_tokens=16)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(call: Callable[[], Awaitable[Any]], calls: int) -> dict[str, float]:
    """Run ``calls`` calls with CONCURRENCY in flight (after one warm-up wave); calls/s and CPU ms/call."""

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    async def wave(total: int) -> None:
        per, extra = divmod(total, CONCURRENCY)
        await asyncio.gather(*(worker(per + (i < extra)) for i in range(CONCURRENCY)))

    await wave(CONCURRENCY)  # warm-up: connections, imports, caches
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    await wave(calls)
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    return {"calls_per_s": round(calls / wall, 1), "cpu_ms_per_call": round(cpu / calls * 1000, 3)}


async def bare_aiohttp(base_url: str, calls: int) -> dict[str, float]:
    body = {
        "model": "tiny",
        "messages": [{"role": m.role, "content": m.content} for m in REQUEST.messages],
        "temperature": 0.0,
        "max_tokens": 16,
    }
    headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def call() -> str:
            async with session.post(
                base_url + "/chat/completions", data=json.dumps(body), headers=headers
            ) as r:
                return json.loads(await r.read())["choices"][0]["message"]["content"]

        return await measure(call, calls)


def provider_for(path: str, base_url: str) -> BaseProvider:
    config = ProviderConfig(api_base=base_url, max_concurrency=CONCURRENCY)
    fields: dict[str, Any] = {"api_key": "bench"}
    if path == "openai_compat_aiohttp":
        return get_provider("openai/tiny", config, **fields)
    if path == "openai_compat_sdk":
        return get_provider("openai/tiny", config, backend_options={"client": "openai"}, **fields)
    if path == "litellm_openai":
        return LiteLLMProvider("openai/tiny", config.model_copy(update={"api_key": None}))
    return LiteLLMProvider("hosted_vllm/tiny", config)


async def provider_path(path: str, base_url: str, calls: int) -> dict[str, float]:
    provider = provider_for(path, base_url)
    try:
        return await measure(lambda: provider.complete(REQUEST), calls)
    finally:
        await provider.aclose()


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "calls_per_s": max(r["calls_per_s"] for r in runs),
        "cpu_ms_per_call": min(r["cpu_ms_per_call"] for r in runs),
    }


async def bench_http(calls: int, slow_calls: int, rounds: int) -> dict[str, Any]:
    os.environ.setdefault("OPENAI_API_KEY", "bench")
    paths = ["openai_compat_aiohttp", "openai_compat_sdk", "litellm_openai", "litellm_hosted_vllm"]
    slow = {"openai_compat_sdk", "litellm_openai", "litellm_hosted_vllm"}
    results: dict[str, list[dict[str, float]]] = {"bare_aiohttp": [], **{p: [] for p in paths}}
    async with serve_in_subprocess(latency=LATENCY, content="the door opens") as base_url:
        for _ in range(rounds):
            results["bare_aiohttp"].append(await bare_aiohttp(base_url, calls))
            for path in paths:
                n = slow_calls if path in slow else calls
                results[path].append(await provider_path(path, base_url, n))
    baseline = best(results["bare_aiohttp"])
    report: dict[str, Any] = {"bare_aiohttp": baseline}
    for path in paths:
        figures = best(results[path])
        throughput = figures["calls_per_s"] / baseline["calls_per_s"]
        cpu = figures["cpu_ms_per_call"] / baseline["cpu_ms_per_call"]
        report[path] = {
            **figures,
            "throughput_ratio": round(throughput, 2),
            "cpu_ratio": round(cpu, 2),
            "meets_target": throughput >= 0.9 and cpu <= 1.5,
        }
    return report


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--skip-hf", action="store_true", help="HTTP paths only")
    args = parser.parse_args()
    calls, slow_calls, rounds = (768, 512, 1) if args.quick else (4096, 2048, 2)
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "http": {
            "concurrency": CONCURRENCY,
            "latency_s": LATENCY,
            "calls": calls,
            "slow_path_calls": slow_calls,
        },
    }
    report["http"]["results"] = await bench_http(calls, slow_calls, rounds)
    if not args.skip_hf:
        report["hf"] = await bench_hf(max_tokens=16 if args.quick else 32, rounds=1 if args.quick else 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
