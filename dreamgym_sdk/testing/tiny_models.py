"""Tiny chat models built on the spot: a locally trained BPE tokenizer plus a small random Llama.

For tests, examples and distillation experiments on a CPU, with no downloads::

    path = build_tiny_model(tmp_path / "tiny", ["open the door", "you see a key", ...])
    provider = get_provider(f"hf:{path}")

The tokenizer is byte-level BPE (any text encodes), wrapped as ``PreTrainedTokenizerFast`` with a
ChatML-style chat template whose assistant turns sit inside ``{% generation %}`` markers (what TRL's
``assistant_only_loss`` needs). The model is ``LlamaForCausalLM`` with random weights; train it (SFT,
distillation) to make it say anything sensible, or, in a test, make it learn fixed answers to fixed
prompts by heart with :func:`teach_tiny_model`::

    teach_tiny_model(path, [(request.messages, '{"next_state": "outside", ...}')])
    # greedy decoding on hf:<path> now answers request with exactly that text

Needs the ``hf`` extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dreamgym_sdk._imports import require

if TYPE_CHECKING:
    from dreamgym_sdk.providers.base import ChatMessage

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer", "teach_tiny_model"]

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
