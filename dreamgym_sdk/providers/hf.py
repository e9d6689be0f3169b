"""The local transformers provider (``hf:<path>``), which coalesces concurrent requests into batches.

**Dynamic batching.** Requests queue up; one of the waiting callers takes up to ``max_batch_size`` of
them, left-pads them into one batch and runs a single ``model.generate`` call in a worker thread
(``anyio.to_thread.run_sync``), then wakes the callers and hands the turn to the next waiting caller.
There is no background task: the batch runner is always a caller that is waiting anyway, so nothing
outlives the calls and nothing needs to be shut down but the model. Under load, every batch takes all
requests that arrived while the previous one ran.

**Per-request sampling in a shared batch.** ``generate`` runs greedily over scores that a logits
processor has already reduced to one token per row: each row is sampled with its own temperature,
``top_p`` and seeded generator (temperature 0 is argmax), so a seeded request gets the same tokens
whatever else shares its batch (up to floating-point differences of padded batches). A per-row stopping
criterion ends each row at its own ``max_tokens`` or ``stop`` strings; the stop string is cut from the
text, as OpenAI does. ``response_schema`` is not enforced (no constrained decoding): callers parse.

Needs the ``hf`` extra (torch, transformers). Works on CPU; on GPUs pass ``device_map``/``dtype`` in
``ProviderConfig.backend_options`` (see :class:`HFOptions`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ProviderError
from dreamgym_sdk.providers._batching import BatchJob, BatchStats, DynamicBatcher
from dreamgym_sdk.providers._provider import BaseProvider
from dreamgym_sdk.providers.base import ChatRequest, ChatResponse, Usage
from dreamgym_sdk.providers.config import ProviderConfig

__all__ = ["BatchStats", "HFOptions", "HFProvider"]


class HFOptions(BaseModel):
    """Backend options of :class:`HFProvider` (``ProviderConfig.backend_options``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str | None = None
    """Device to put the model on (``"cpu"``, ``"cuda:0"``); ignored when ``device_map`` is set."""
    device_map: str | dict[str, Any] | None = None
    """Passed to ``from_pretrained`` (e.g. ``"auto"``, needs ``accelerate``)."""
    dtype: str = "auto"
    """``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
    max_batch_size: int = Field(default=16, ge=1)
    """Most requests in one ``generate`` call."""
    batch_window_s: float = Field(default=0.0, ge=0)
    """Seconds a batch waits for more requests before it starts (0: take what is waiting now)."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Tokens to generate when a request sets no ``max_tokens``."""
    trust_remote_code: bool = False
    """Allow model code shipped with the checkpoint."""


@dataclass(eq=False, kw_only=True)
class _Job(BatchJob):
    request: ChatRequest
    result: ChatResponse | None = None


class HFProvider(BaseProvider):
    """A transformers model in this process, answering concurrent requests in dynamic batches.

    ```python
    provider = HFProvider("hf:/models/my-tiny-model")           # or get_provider("hf:/models/...")
    ```

    Args:
        model: ``hf:<path or hub id>``; the model is loaded on the first call.
        config: limits, deadlines and cache; ``backend_options`` are :class:`HFOptions`.
    """

    def __init__(self, model: str, config: ProviderConfig | None = None) -> None:
        super().__init__(model, config)
        self.options = HFOptions.model_validate(self.config.backend_options)
        self.path = model.removeprefix("hf:")
        self._batcher = DynamicBatcher[_Job](
            self._generate_batch,
            max_batch_size=self.options.max_batch_size,
            window_s=self.options.batch_window_s,
            interrupted=lambda: ProviderError(f"{self.model}: generation was interrupted"),
        )
        self.stats = self._batcher.stats
        """Batching statistics."""
        self._load_lock = anyio.Lock()
        self._lm: Any = None
        self._tokenizer: Any = None

    async def _attempt(self, request: ChatRequest) -> ChatResponse:
        if self._lm is None:
            async with self._load_lock:
                if self._lm is None:
                    await anyio.to_thread.run_sync(self._load)
        job = await self._batcher.submit(_Job(request=request))
        assert job.result is not None
        return job.result

    # -- blocking work, in a worker thread -------------------------------------------------------------

    def _load(self) -> None:
        torch = require("torch", extra="hf", feature="the hf: provider")
        transformers = require("transformers", extra="hf", feature="the hf: provider")
        opts = self.options
        kwargs: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
        kwargs["dtype"] = opts.dtype if opts.dtype == "auto" else getattr(torch, opts.dtype)
        if opts.device_map is not None:
            kwargs["device_map"] = opts.device_map
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            self.path, trust_remote_code=opts.trust_remote_code
        )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = transformers.AutoModelForCausalLM.from_pretrained(self.path, **kwargs)
        if opts.device_map is None and opts.device is not None:
            model = model.to(opts.device)
        model.eval()
        self._tokenizer = tokenizer
        self._lm = model

    def _prompt(self, request: ChatRequest) -> str:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if getattr(self._tokenizer, "chat_template", None):
            return str(
                self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def _generate_batch(self, jobs: list[_Job]) -> None:
        try:
            self._generate(jobs)
        except Exception as exc:  # one failure answers the whole batch with a typed error
            error = ProviderError(f"{self.model}: generation failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            for job in jobs:
                if job.result is None:
                    job.error = error

    def _generate(self, jobs: list[_Job]) -> None:
        torch = require("torch", extra="hf", feature="the hf: provider")
        transformers = require("transformers", extra="hf", feature="the hf: provider")
        tok, model = self._tokenizer, self._lm
        requests = [job.request for job in jobs]
        limits = [r.max_tokens or self.options.default_max_tokens for r in requests]
        enc = tok(
            [self._prompt(r) for r in requests], return_tensors="pt", padding=True, add_special_tokens=False
        )
        enc = {k: v.to(model.device) for k, v in enc.items()}
        prompt_len = int(enc["input_ids"].shape[1])
        eos_ids = _eos_ids(model, tok)
        sampler = _RowSampler(torch, requests, model.device)
        stopper = _RowStopper(torch, tok, requests, limits, prompt_len)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                do_sample=False,
                max_new_tokens=max(limits),
                logits_processor=transformers.LogitsProcessorList([sampler]),
                stopping_criteria=transformers.StoppingCriteriaList([stopper]),
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos_ids,
            )
        prompt_lengths = enc["attention_mask"].sum(dim=1).tolist()
        for i, job in enumerate(jobs):
            new = out[i, prompt_len:].tolist()
            if stopper.ended[i] is not None:  # padding follows a row that stopped before the longest one
                new = new[: stopper.ended[i]]
            cut = next((j for j, t in enumerate(new) if t in eos_ids), None)
            generated = new if cut is None else new[: cut + 1]
            text = tok.decode(new if cut is None else new[:cut], skip_special_tokens=True)
            finish = "stop" if cut is not None else "length"
            for s in requests[i].stop or ():
                at = text.find(s)
                if at >= 0:
                    text, finish = text[:at], "stop"
            job.result = ChatResponse(
                text=text,
                model=self.model,
                usage=Usage(
                    prompt_tokens=int(prompt_lengths[i]), completion_tokens=len(generated), cost_usd=0.0
                ),
                finish_reason=finish,
            )

    async def _close(self) -> None:
        self._lm = None
        self._tokenizer = None


def _eos_ids(model: Any, tok: Any) -> list[int]:
    ids: Any = model.generation_config.eos_token_id
    if ids is None:
        ids = tok.eos_token_id
    values: list[Any] = list(ids) if isinstance(ids, list | tuple) else [ids]  # pyright: ignore[reportUnknownArgumentType]
    return [int(i) for i in values if i is not None]


class _RowSampler:
    """Logits processor that picks each row's next token with that row's own sampling parameters.

    Returns scores that are 0 at the chosen token and -inf elsewhere, so greedy decoding keeps it.
    """

    def __init__(self, torch: Any, requests: list[ChatRequest], device: Any) -> None:
        self.torch = torch
        self.temperatures = [r.temperature for r in requests]
        self.top_ps = [r.top_p if r.top_p is not None else 1.0 for r in requests]
        self.generators = [
            torch.Generator(device=device).manual_seed(r.seed) if r.seed is not None else None
            for r in requests
        ]
        self.sampled = [i for i, t in enumerate(self.temperatures) if t > 0]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        choice = scores.argmax(dim=-1)
        if self.sampled:
            rows = torch.tensor(self.sampled, device=scores.device)
            temps = torch.tensor([self.temperatures[i] for i in self.sampled], device=scores.device)
            logits = scores[rows].float() / temps[:, None]
            probs = torch.softmax(logits, dim=-1)
            top_p = torch.tensor([self.top_ps[i] for i in self.sampled], device=scores.device)
            if bool((top_p < 1.0).any()):
                sorted_p, order = probs.sort(dim=-1, descending=True)
                drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= top_p[:, None]
                sorted_p = sorted_p.masked_fill(drop, 0.0)
                probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
                probs = probs / probs.sum(dim=-1, keepdim=True)
            draws = torch.stack(
                [torch.rand((), generator=self.generators[i], device=scores.device) for i in self.sampled]
            )
            cdf = probs.cumsum(dim=-1)
            picked = (cdf < draws[:, None] * cdf[:, -1:]).sum(dim=-1).clamp(max=probs.shape[-1] - 1)
            choice[rows] = picked
        out = torch.full_like(scores, -math.inf)
        out.scatter_(1, choice[:, None], 0.0)
        return out


class _RowStopper:
    """Stopping criterion that ends each row at its own ``max_tokens`` or ``stop`` strings."""

    def __init__(self, torch: Any, tok: Any, requests: list[ChatRequest], limits: list[int], prompt_len: int):
        self.torch = torch
        self.tok = tok
        self.stops = [r.stop or () for r in requests]
        self.windows = [4 * max((len(s) for s in stops), default=0) + 4 for stops in self.stops]
        self.limits = limits
        self.prompt_len = prompt_len
        self.ended: list[int | None] = [None] * len(requests)
        """Per row, how many tokens it had generated when it stopped (``None``: still running)."""

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        generated = input_ids.shape[1] - self.prompt_len
        done = [generated >= limit for limit in self.limits]
        for i, stops in enumerate(self.stops):
            if stops and not done[i]:
                window = input_ids[i, max(self.prompt_len, input_ids.shape[1] - self.windows[i]) :]
                tail = self.tok.decode(window, skip_special_tokens=True)
                done[i] = any(s in tail for s in stops)
        for i, stopped in enumerate(done):
            if stopped and self.ended[i] is None:
                self.ended[i] = generated
        return self.torch.tensor(done, dtype=self.torch.bool, device=input_ids.device)
