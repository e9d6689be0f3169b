"""The in-process vLLM backend; needs a GPU and the ``vllm`` extra, so it is skipped everywhere else."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamgym_sdk.providers import ChatRequest, get_provider

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("vLLM needs a GPU", allow_module_level=True)
pytest.importorskip("vllm")


async def test_vllm_answers_and_honours_the_schema(tiny_model: Path) -> None:
    schema = {"type": "object", "properties": {"reward": {"type": "number"}}, "required": ["reward"]}
    async with get_provider(
        f"vllm:{tiny_model}", backend_options={"gpu_memory_utilization": 0.3}
    ) as provider:
        plain = await provider.complete(ChatRequest.of(None, "open the door", max_tokens=8, seed=1))
        structured = await provider.complete(
            ChatRequest.of(None, "reward?", max_tokens=32, response_schema=schema)
        )
    assert plain.usage.completion_tokens <= 8
    assert structured.text.lstrip().startswith("{")
