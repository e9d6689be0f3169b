"""Tiny chat models built on the spot: a locally trained BPE tokenizer plus a small random Llama.

What the demo's policy and distilled experience model start from, and what tests and examples run on a
CPU with no downloads::

    path = build_tiny_model(tmp_path / "tiny", ["open the door", "you see a key", ...])
    provider = get_provider(f"hf:{path}")

The tokenizer is byte-level BPE (any text encodes), wrapped as ``PreTrainedTokenizerFast`` with a
ChatML-style chat template whose assistant turns sit inside ``{% generation %}`` markers (what TRL's
``assistant_only_loss`` needs). The model is ``LlamaForCausalLM`` with random weights; train it (SFT,
distillation) to make it say anything sensible, or, in a test, make it learn fixed answers to fixed
prompts by heart with :func:`dreamgym_sdk.testing.teach_tiny_model`.

Needs the ``hf`` extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dreamgym_sdk._imports import require

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer", "frequent_lines"]

SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|im_start|>", "<|im_end|>")
"""Pad, begin-of-text, turn start and turn end (also the end-of-sequence token)."""

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{ message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{ '\\n' }}"
    "{%- else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML-style template; assistant content and its end marker are the "generation" span."""

_DEFAULT_CORPUS = (
    "You are in a small room. There is a locked door to the north and a key on the table.",
    "You take the key. You open the door. You win!",
    '{"reasoning": "the door opens", "next_state": "outside", "reward": 1, "done": true, "success": true}',
)


def build_tiny_tokenizer(corpus: Iterable[str], *, vocab_size: int = 400) -> Any:
    """Train a byte-level BPE tokenizer on ``corpus`` and wrap it as ``PreTrainedTokenizerFast``."""
    tokenizers = require("tokenizers", extra="hf", feature="tiny models")
    transformers = require("transformers", extra="hf", feature="tiny models")
    texts = list(corpus) or list(_DEFAULT_CORPUS)
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    pad, bos, _, eos = SPECIAL_TOKENS
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        additional_special_tokens=[SPECIAL_TOKENS[2]],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=2048,
    )


def build_tiny_model(
    out_dir: str | Path,
    corpus: Iterable[str] = (),
    *,
    vocab_size: int = 400,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    intermediate: int | None = None,
    max_positions: int = 2048,
    phrases: Sequence[str] = (),
    seed: int = 0,
) -> Path:
    """Build and save a tiny Llama chat model with a locally trained tokenizer; returns ``out_dir``.

    ``hf:<out_dir>`` loads the result. No network access is needed or attempted.

    Args:
        out_dir: where the tokenizer, config and weights are saved (created if missing).
        corpus: texts to train the tokenizer on (a small built-in corpus when empty).
        vocab_size: BPE vocabulary size, special and byte tokens included (at least ~270).
        hidden: hidden size.
        layers: decoder layers.
        heads: attention heads (``hidden`` must be divisible by it).
        intermediate: MLP width (default ``4 * hidden``).
        max_positions: longest sequence the model accepts (also the tokenizer's ``model_max_length``).
        phrases: texts added to the vocabulary as single tokens on top of ``vocab_size`` (long fixed text
            that recurs in prompts: a system prompt, headers), so sequences get shorter.
        seed: seed of the random weights.
    """
    torch = require("torch", extra="hf", feature="tiny models")
    transformers = require("transformers", extra="hf", feature="tiny models")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(corpus, vocab_size=vocab_size)
    if phrases:
        tokenizer.add_tokens(list(phrases))
    tokenizer.model_max_length = max_positions
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate or 4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def frequent_lines(texts: Iterable[str], *, min_share: float, min_chars: int, limit: int = 256) -> list[str]:
    r"""The lines (stripped) found in at least ``min_share`` of ``texts``, longest first, at most ``limit``
    of them; each is counted once per text.

    Without their newline, they match in the prompt and inside the answer's JSON strings alike (where a
    newline is written ``\n``), so a state line copied from the prompt is the same token in the answer.
    """
    counts: Counter[str] = Counter()
    total = 0
    for text in texts:
        total += 1
        counts.update({line.strip() for line in text.splitlines() if len(line.strip()) >= min_chars})
    lines = [line for line, n in counts.items() if n >= min_share * total]
    return sorted(lines, key=lambda line: (-len(line), line))[:limit]
