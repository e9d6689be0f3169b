"""The default student on a CPU: a tiny Llama with a tokenizer trained on the collected data itself.

:func:`build_student` trains a byte-level BPE tokenizer on the SFT examples (prompts and targets: the
environment's vocabulary of states and actions, the prompt's fixed wording), adds the long lines that
recur in most prompts (the system message, the task instruction, section headers) as single tokens, and
builds a randomly initialised ``LlamaForCausalLM`` of a few million parameters around it. Folding the fixed
text into a few tokens makes the sequences several times shorter, which is most of the cost of training
and of answering on a CPU. The saved directory loads as ``hf:<dir>`` like any model. Needs the ``hf``
extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dreamgym_sdk.distill.dataset import SFTExample
from dreamgym_sdk.tiny_models import frequent_lines

__all__ = ["StudentConfig", "build_student", "frequent_lines"]


class StudentConfig(BaseModel):
    """Size of the tiny student model and of its tokenizer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vocab_size: int = Field(default=2048, ge=300)
    """BPE vocabulary trained on the data (special and byte tokens included; phrase tokens come on top)."""
    hidden_size: int = Field(default=128, ge=16)
    layers: int = Field(default=3, ge=1)
    heads: int = Field(default=4, ge=1)
    intermediate_size: int | None = None
    """MLP width (default ``4 * hidden_size``)."""
    max_positions: int = Field(default=4096, ge=128)
    """Longest sequence (prompt and answer) the model accepts."""
    phrase_tokens: bool = True
    """Add the long lines that recur in prompts as single tokens (see :func:`frequent_lines`)."""
    phrase_min_share: float = Field(default=0.1, gt=0.0, le=1.0)
    """A line becomes a token when at least this share of the examples contain it."""
    phrase_min_chars: int = Field(default=8, ge=4)
    """Shortest line made a token."""
    tokenizer_examples: int = Field(default=2_000, ge=1)
    """How many examples the tokenizer is trained on (evenly spread over the data)."""


def _spread(examples: Sequence[SFTExample], n: int) -> list[SFTExample]:
    if len(examples) <= n:
        return list(examples)
    step = len(examples) / n
    return [examples[int(i * step)] for i in range(n)]


def build_student(out_dir: str | Path, examples: Sequence[SFTExample], config: StudentConfig) -> Path:
    """Build and save the tokenizer and the untrained tiny model for ``examples``; returns ``out_dir``.

    Blocking (trains a tokenizer): call it from a worker thread in async code.
    """
    from dreamgym_sdk.tiny_models import build_tiny_model

    sample = _spread(examples, config.tokenizer_examples)
    corpus: list[str] = []
    for example in sample:
        corpus.extend(m["content"] for m in example.prompt)
        corpus.extend(m["content"] for m in example.completion)
    phrases: list[str] = []
    if config.phrase_tokens:
        prompts = ["\n".join(m["content"] for m in e.prompt) for e in sample]
        phrases = frequent_lines(
            prompts, min_share=config.phrase_min_share, min_chars=config.phrase_min_chars
        )
    return build_tiny_model(
        out_dir,
        corpus,
        vocab_size=config.vocab_size,
        hidden=config.hidden_size,
        layers=config.layers,
        heads=config.heads,
        intermediate=config.intermediate_size,
        max_positions=config.max_positions,
        phrases=phrases,
        seed=0,
    )
