"""Tiny models: built offline, loadable by transformers, with a chat template TRL can mask."""

from __future__ import annotations

from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")


def test_tiny_model_loads_with_a_chat_template(tiny_model: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    assert "{% generation %}" in tok.chat_template.replace("{%- generation %}", "{% generation %}")
    assert model.config.vocab_size == len(tok)
    assert tok.decode(tok("héllo 🙂")["input_ids"]) == "héllo 🙂"  # byte-level: any text round-trips
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "open the door"}]
    out = tok.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == "open the door<|im_end|>"
