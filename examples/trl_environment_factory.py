"""Train with TRL's GRPOTrainer on a DreamEnv through ``environment_factory``.

Run: ``python examples/trl_environment_factory.py`` (needs ``pip install 'dreamgym-sdk[train]'``)

Without arguments it builds a tiny random model offline and takes one GRPO step: the wiring runs end to
end (TRL renders the ``act`` tool from its docstring, resets an environment per rollout, scores each
with ``get_reward``), but a random model never calls the tool, so rewards are 0. Pass
``--model PATH`` with a tool-calling instruct model (e.g. a local copy of Qwen/Qwen3-0.6B) to train
for real.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from dreamgym_sdk import DreamEnv, ExperienceRequest, Task
from dreamgym_sdk.integrations.trl import TRLEnvironmentFactory
from dreamgym_sdk.testing import FunctionExperienceModel, build_tiny_tokenizer


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    """A hand-written experience model standing in for an LLM."""
    if req.action == "open fridge":
        return {"reasoning": "it opens", "next_state": "fridge: open", "reward": 0.0, "done": False}
    won = req.action == "put apple in fridge" and "open" in req.state
    state = "apple in fridge" if won else req.state
    return {"reasoning": "", "next_state": state, "reward": float(won), "done": won, "success": won}


MODEL = FunctionExperienceModel(kitchen, initial_state="fridge: closed")
TASKS = [Task(instruction="Put the apple in the fridge.", environment="kitchen")]


def tiny_model() -> tuple[Any, Any]:
    """A random 1-layer Llama with a Qwen3 tool-calling chat template TRL recognises (no download)."""
    import torch
    import transformers
    from trl.chat_template_utils import qwen3_chat_template

    tokenizer = build_tiny_tokenizer(["fridge: closed", '<tool_call>{"name": "act"}</tool_call>'])
    tokenizer.add_tokens(
        ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]
    )
    tokenizer.chat_template = qwen3_chat_template
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config), tokenizer


def main() -> None:
    from trl import GRPOConfig, GRPOTrainer  # pyright: ignore[reportPrivateImportUsage]

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a local tool-calling chat model (default: a tiny random one)")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()
    if args.model:
        import transformers

        model: Any = args.model
        tokenizer: Any = transformers.AutoTokenizer.from_pretrained(args.model)
    else:
        model, tokenizer = tiny_model()

    episodes = []
    factory = TRLEnvironmentFactory(
        lambda: DreamEnv(MODEL, max_steps=5), tasks=TASKS, group_size=2, seed=0, on_episode=episodes.append
    )
    with factory, tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=2,
            num_generations=2,  # = group_size: both rollouts of a GRPO group play the same task
            max_steps=args.steps,
            max_completion_length=64 if not args.model else 512,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=not args.model,
            bf16=False,
        )
        trainer = GRPOTrainer(
            model=model, args=config, processing_class=tokenizer, environment_factory=factory
        )  # no train_dataset: the environment owns the tasks
        trainer.train()
    print("episodes scored:", [(len(e), e.total_reward) for e in episodes])
    print(
        "rewards logged:", {k: v for k, v in trainer.state.log_history[0].items() if k.startswith("rewards/")}
    )


if __name__ == "__main__":
    main()
