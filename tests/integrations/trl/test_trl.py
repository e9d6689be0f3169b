"""The TRL integration: environments as TRL inspects and drives them, and one real GRPO step on CPU."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from dreamgym_sdk import DreamEnv, EpisodeFinishedError, ExperienceRequest, Task, fork_task
from dreamgym_sdk.experience import derive_seed
from dreamgym_sdk.integrations.trl import ToolEnvironment, TRLEnvironmentFactory
from dreamgym_sdk.testing import FunctionExperienceModel
from dreamgym_sdk.types import Episode, StepResult

KITCHEN = "fridge: closed; apple: in hand"


def kitchen(req: ExperienceRequest) -> dict[str, Any]:
    if req.action == "open fridge":
        return {
            "reasoning": "it opens",
            "next_state": "fridge: open; apple: in hand",
            "reward": 0.0,
            "done": False,
        }
    if req.action == "put apple in fridge" and "fridge: open" in req.state:
        return {
            "reasoning": "it fits",
            "next_state": "apple in fridge",
            "reward": 1.0,
            "done": True,
            "success": True,
        }
    return {"reasoning": "nothing", "next_state": req.state, "reward": 0.0, "done": False}


def make_env() -> DreamEnv:
    return DreamEnv(FunctionExperienceModel(kitchen, initial_state=KITCHEN), max_steps=4)


def trl_tools(instance: object) -> list[str]:
    """The tool names TRL extracts: functions of the class, minus reset, get_reward and _private ones."""
    names = [name for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)]
    return [n for n in names if n not in ("reset", "get_reward") and not n.startswith("_")]


def test_the_environment_exposes_exactly_one_documented_tool() -> None:
    transformers_utils = pytest.importorskip("transformers.utils")
    with TRLEnvironmentFactory(make_env, tasks=["store the apple"]) as factory:
        env = factory()
        assert trl_tools(env) == ["act"]
        schema = transformers_utils.get_json_schema(env.act)["function"]
        assert schema["name"] == "act" and schema["parameters"]["required"] == ["action"]
        assert "open fridge" in schema["parameters"]["properties"]["action"]["description"]
        assert trl_tools(ToolEnvironment(factory)) == []


def test_an_episode_driven_like_trl() -> None:
    episodes: list[Episode] = []
    with TRLEnvironmentFactory(make_env, tasks=["store the apple"], on_episode=episodes.append) as factory:
        env = factory()
        prompt = env.reset(prompt=[{"role": "user", "content": ""}])
        assert prompt == f"store the apple\n\nCurrent state:\n{KITCHEN}"
        assert env.act("open fridge") == "fridge: open; apple: in hand"
        assert env.act("put apple in fridge") == "apple in fridge\n\n[The episode is over: success.]"
        with pytest.raises(EpisodeFinishedError):
            env.act("open fridge")
        assert env.get_reward() == 1.0
        assert env.get_reward() == 1.0 and len(episodes) == 1  # reported once
        assert episodes[0].success and len(episodes[0]) == 2
        # TRL reuses pooled instances: reset starts over, and a rollout without actions scores 0
        env.reset(prompt=[{"role": "user", "content": "Play."}])
        assert env.get_reward() == 0.0 and not env.done


def test_truncation_is_reported_to_the_model() -> None:
    with TRLEnvironmentFactory(make_env, tasks=["store the apple"]) as factory:
        env = factory()
        env.reset()
        answers = [env.act("wait") for _ in range(4)]
        assert answers[-1].endswith("[The episode is over: step limit reached.]")


def test_tasks_from_rows_pool_groups_and_seeds() -> None:
    seeds: list[int | None] = []

    def record(req: ExperienceRequest) -> dict[str, Any]:
        seeds.append(req.seed)
        return {"reasoning": "", "next_state": req.task.instruction, "reward": 0.0, "done": True}

    pool = [Task(instruction="a"), Task(instruction="b")]
    make = lambda: DreamEnv(FunctionExperienceModel(record, initial_state="s"))  # noqa: E731
    with TRLEnvironmentFactory(make, tasks=pool, group_size=2, seed=100) as factory:
        envs = [factory() for _ in range(6)]
        instructions = []
        for env in envs:
            env.reset(prompt=[{"role": "user", "content": ""}])
            instructions.append(env.act("x"))
        assert [i.split("\n")[0] for i in instructions] == ["a", "a", "b", "b", "a", "a"]
        assert seeds == [derive_seed(episode_seed, "step", 0) for episode_seed in range(100, 106)]
        env = envs[0]
        assert env.reset(task="from the row", prompt="Go:").startswith("\n\nfrom the row")
        assert env.reset(task_id=pool[1].id).startswith("b")
        assert env.reset(task=pool[0].model_dump()).startswith("a")
        with pytest.raises(KeyError):
            env.reset(task_id="nope")


def test_a_grpo_group_of_a_fork_starts_from_the_stored_state() -> None:
    seen: list[ExperienceRequest] = []

    def record(req: ExperienceRequest) -> dict[str, Any]:
        seen.append(req)
        return kitchen(req)

    make = lambda: DreamEnv(FunctionExperienceModel(record, initial_state=KITCHEN), max_steps=4)  # noqa: E731
    with TRLEnvironmentFactory(make, tasks=["store the apple"]) as factory:  # an episode to fork from
        env = factory()
        env.reset()
        env.act("open fridge")
        stored = env.episode
    assert stored is not None
    fork = fork_task(stored.task, stored.transitions)
    seen.clear()
    with TRLEnvironmentFactory(make, tasks=[fork], group_size=4) as factory:
        group = [factory() for _ in range(4)]
        prompts = [env.reset() for env in group]
        answers = [env.act("put apple in fridge") for env in group]
    assert prompts == ["store the apple\n\nCurrent state:\nfridge: open; apple: in hand"] * 4
    assert all(a.startswith("apple in fridge") for a in answers)
    assert [[t.action for t in r.history] for r in seen] == [["open fridge"]] * 4  # the fork's past


def test_a_real_env_is_recorded_too() -> None:
    class Counter:
        """A minimal real env: counts "add" actions, done at 2."""

        def __init__(self) -> None:
            self.n = 0

        async def reset(
            self, *, task: Any = None, seed: Any = None, options: Any = None
        ) -> tuple[str, dict[str, Any]]:
            self.n = 0
            return "count: 0", {}

        async def step(self, action: str) -> StepResult:
            self.n += action == "add"
            return StepResult(
                f"count: {self.n}", float(self.n == 2), self.n >= 2, False, {"success": self.n >= 2}
            )

        async def close(self) -> None:
            pass

    episodes: list[Episode] = []
    with TRLEnvironmentFactory(Counter, tasks=["count to 2"], on_episode=episodes.append) as factory:
        env = factory()
        env.reset()
        env.act("add")
        assert env.act("add").endswith("success.]") and env.get_reward() == 1.0
    assert episodes[0].source == "real" and episodes[0].success and len(episodes[0]) == 2


def test_subclasses_define_typed_tools() -> None:
    transformers_utils = pytest.importorskip("transformers.utils")

    class FridgeTools(ToolEnvironment):
        def open_fridge(self) -> str:
            """Open the fridge."""
            return self._act("open fridge")

        def put(self, item: str) -> str:
            """Put something in the fridge.

            Args:
                item: what to put in.
            """
            return self._act(f"put {item} in fridge")

    with TRLEnvironmentFactory(make_env, tasks=["store"], environment_class=FridgeTools) as factory:
        env = factory()
        assert isinstance(env, FridgeTools) and trl_tools(env) == ["open_fridge", "put"]
        assert transformers_utils.get_json_schema(env.put)["function"]["parameters"]["required"] == ["item"]
        env.reset()
        env.open_fridge()
        assert env.put("apple").endswith("success.]") and env.get_reward() == 1.0


def _tool_call(action: str) -> str:
    return (
        '<tool_call>\n{"name": "act", "arguments": '
        + json.dumps({"action": action})
        + "}\n</tool_call><|im_end|>"
    )


def test_one_grpo_step_with_the_environment_factory(tmp_path: Path) -> None:
    """A real GRPOTrainer run: TRL renders our tool schema, parses the model's tool calls, runs its tool loop
    on our environments, scores with get_reward and takes an optimizer step. The tiny model's ``generate``
    is scripted (it plays the policy), since a random model would never emit a well-formed tool call."""
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    transformers = pytest.importorskip("transformers")
    datasets = pytest.importorskip("datasets")
    from trl.chat_template_utils import qwen3_chat_template

    from dreamgym_sdk.testing import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer([KITCHEN, _tool_call("open fridge"), "apple in fridge"])
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
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    prompts_seen: list[str] = []

    def play(text: str) -> str:
        last_tool = text.rsplit("<tool_response>", 1)[-1] if "<tool_response>" in text else ""
        if "apple in fridge" in last_tool:
            return "Done.<|im_end|>"
        if "fridge: open" in last_tool:
            return _tool_call("put apple in fridge")
        prompts_seen.append(text)
        return _tool_call("open fridge")

    def scripted_generate(input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
        rows = [
            tokenizer(play(tokenizer.decode(row)), add_special_tokens=False)["input_ids"] for row in input_ids
        ]
        width = max(map(len, rows))
        padded = [r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows]
        return torch.cat([input_ids, torch.tensor(padded, dtype=input_ids.dtype)], dim=1)

    model.generate = scripted_generate
    episodes: list[Episode] = []
    factory = TRLEnvironmentFactory(
        make_env, tasks=["store the apple"], group_size=2, on_episode=episodes.append
    )
    args = trl.GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_generations=2,
        max_steps=1,
        max_completion_length=256,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
    )
    dataset = datasets.Dataset.from_dict({"prompt": [[{"role": "user", "content": "Play the game."}]]})
    with factory:
        with pytest.warns(UserWarning, match="environment_factory"):
            trainer = trl.GRPOTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                environment_factory=factory,
            )
        trainer.train()
    assert '"name": "act"' in prompts_seen[0] and "store the apple" in prompts_seen[0]
    assert len(episodes) == 2 and all(e.success and len(e) == 2 for e in episodes)
    logged = trainer.state.log_history[0]
    assert logged["rewards/TextActionEnvironment/mean"] == 1.0
    assert logged["tools/call_frequency"] == 2.0 and logged["tools/failure_frequency"] == 0.0
