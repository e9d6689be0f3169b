"""The in-process vLLM provider (``vllm:<path>``), for a model on this machine's GPU(s).

vLLM batches concurrent requests itself (continuous batching), so every :meth:`complete` call simply
submits one request to the shared engine. Sampling parameters map one to one (``seed`` per request);
``response_schema`` becomes vLLM's structured-output (JSON schema) decoding.

Needs the GPU-only ``vllm`` extra, imported when the first request arrives and never before. vLLM runs on
asyncio (use the asyncio backend of anyio). To use a vLLM *server* instead, point the OpenAI-compatible
provider at it: ``get_provider("openai/<served-name>", api_base="http://host:8000/v1")``.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ProviderError
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse, Usage
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["VLLMOptions", "VLLMProvider"]

_ids = itertools.count()


class VLLMOptions(BaseModel):
    """Backend options of :class:`VLLMProvider` (``ProviderConfig.backend_options``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    dtype: str = "auto"
    """Weights dtype."""
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    """Share of GPU memory vLLM may take."""
    tensor_parallel_size: int = Field(default=1, ge=1)
    """GPUs to shard the model over."""
    max_model_len: int | None = None
    """Longest context; defaults to the model's."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Tokens to generate when a request sets no ``max_tokens``."""


class VLLMProvider(BaseProvider):
    """A vLLM engine in this process.

    Args:
        model: ``vllm:<path or hub id>``; the engine starts on the first call.
        config: limits, deadlines and cache; ``backend_options`` are :class:`VLLMOptions` (unknown keys
            are passed to ``AsyncEngineArgs``).
    """

    def __init__(self, model: str, config: ProviderConfig | None = None) -> None:
        super().__init__(model, config)
        self.options = VLLMOptions.model_validate(self.config.backend_options)
        self.path = model.removeprefix("vllm:")
        self._engine: Any = None
        self._tokenizer: Any = None
        self._start_lock = anyio.Lock()

    async def _start(self) -> None:
        vllm = require("vllm", extra="vllm", feature="the vllm: provider")
        opts = self.options
        extra = {k: v for k, v in (opts.model_extra or {}).items()}
        args = vllm.AsyncEngineArgs(
            model=self.path,
            dtype=opts.dtype,
            gpu_memory_utilization=opts.gpu_memory_utilization,
            tensor_parallel_size=opts.tensor_parallel_size,
            max_model_len=opts.max_model_len,
            **extra,
        )
        self._engine = vllm.AsyncLLMEngine.from_engine_args(args)
        self._tokenizer = await self._engine.get_tokenizer()

    def _sampling_params(self, request: ChatRequest) -> Any:
        vllm = require("vllm", extra="vllm", feature="the vllm: provider")
        kwargs: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens or self.options.default_max_tokens,
            "seed": request.seed,
            "stop": list(request.stop) if request.stop else None,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        kwargs.update(self.config.extra_params)
        if request.response_schema is not None:
            sampling = require("vllm.sampling_params", extra="vllm", feature="the vllm: provider")
            if hasattr(sampling, "StructuredOutputsParams"):  # vLLM >= 0.10.2
                kwargs["structured_outputs"] = sampling.StructuredOutputsParams(json=request.response_schema)
            else:
                kwargs["guided_decoding"] = sampling.GuidedDecodingParams(json=request.response_schema)
        return vllm.SamplingParams(**kwargs)

    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        if self._engine is None:
            async with self._start_lock:
                if self._engine is None:
                    await self._start()
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        request_id = f"dreamgym-{next(_ids)}"
        engine: Any = self._engine
        final: Any = None
        try:
            async for output in engine.generate(prompt, self._sampling_params(request), request_id):
                final = output
        except BaseException:
            if final is None or not final.finished:
                with anyio.CancelScope(shield=True):
                    await engine.abort(request_id)
            raise
        if final is None or not final.outputs:
            raise ProviderError(f"{self.model}: vLLM returned no output")
        choice = final.outputs[0]
        return ChatResponse(
            text=choice.text,
            model=self.model,
            usage=Usage(
                prompt_tokens=len(final.prompt_token_ids or ()),
                completion_tokens=len(choice.token_ids or ()),
                cost_usd=0.0,
            ),
            finish_reason=choice.finish_reason,
        )

    async def _close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None and hasattr(engine, "shutdown"):
            engine.shutdown()
