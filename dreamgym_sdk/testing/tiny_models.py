"""Tiny chat models for tests: :mod:`dreamgym_sdk.tiny_models`' builders, and :func:`teach_tiny_model`.

:func:`teach_tiny_model` makes such a model learn fixed answers to fixed prompts by heart::

    path = build_tiny_model(tmp_path / "tiny", ["open the door", "you see a key", ...])
    teach_tiny_model(path, [(request.messages, '{"next_state": "outside", ...}')])
    # greedy decoding on hf:<path> now answers request with exactly that text

Needs the ``hf`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dreamgym_sdk._imports import require
from dreamgym_sdk.tiny_models import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_model, build_tiny_tokenizer

if TYPE_CHECKING:
    from dreamgym_sdk.providers.base import ChatMessage

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer", "teach_tiny_model"]


def teach_tiny_model(
    model_dir: str | Path,
    examples: Sequence[tuple[Sequence[ChatMessage], str]],
    *,
    max_steps: int = 400,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> int:
    """Train the model in ``model_dir`` until greedy decoding answers each prompt with its text; saves it.

    For tests that need a local model to say something exact (a valid experience-model JSON answer, say):
    each ``(messages, answer)`` pair is rendered as ``hf:<model_dir>`` renders a request, and the model is
    trained on the answer tokens (and the end-of-turn token) until every one of them is its top
    prediction. Blocking; seconds on a CPU for a handful of examples, fewer when the prompts' fixed text
    is folded into phrase tokens (``build_tiny_model(phrases=...)``).

    Returns:
        The number of optimizer steps taken.

    Raises:
        RuntimeError: the model still gets a token wrong after ``max_steps`` steps.
    """
    torch = require("torch", extra="hf", feature="tiny models")
    transformers = require("transformers", extra="hf", feature="tiny models")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    rows: list[tuple[list[int], list[int]]] = []
    for messages, answer in examples:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        # tokenized apart, as the provider tokenizes the prompt and then generates the answer after it
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((prompt_ids, answer_ids))
    width = max(len(p) + len(a) for p, a in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, a) in enumerate(rows):
        ids[i, : len(p) + len(a)] = torch.tensor(p + a)
        labels[i, len(p) : len(p) + len(a)] = torch.tensor(a)
        mask[i, : len(p) + len(a)] = 1
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    for step in range(max_steps + 1):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        predicted = out.logits[:, :-1].detach().argmax(-1)  # the logits at t predict token t + 1
        target = labels[:, 1:]
        # every answer token on top, by a margin (mean loss < 0.05) that survives incremental decoding
        if out.loss.item() < 0.05 and bool(((predicted == target) | (target == -100)).all()):
            model.eval()
            model.save_pretrained(model_dir)
            return step
        if step < max_steps:
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
    raise RuntimeError(f"the model still misses answer tokens after {max_steps} steps")
