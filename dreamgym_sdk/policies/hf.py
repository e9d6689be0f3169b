"""A local Hugging Face causal-LM policy that records exactly what it sampled, for RL backends to train on.

**Prompts.** With ``prompt_style="transcript"`` (the default) an episode is one growing chat: the system
prompt, a first user turn with the task and the initial observation, then for every step the model's own
completion (as the assistant turn) and the next observation (as a user turn). Each prompt is built from the
previous prompt's *token ids* plus the sampled completion plus the new turn's tokens, so every prompt of an
episode extends the previous one token for token: the whole episode is one sequence that an RL backend can
score in one forward pass, with the environment's tokens masked out (see
:func:`~dreamgym_sdk.training.build_episode_sequence`). With ``prompt_style="window"`` every step gets a
fresh prompt with the last ``history_window`` steps summarised (cheaper on long episodes; each step is
then a sequence of its own). Admissible actions in ``info["admissible_commands"]`` are listed in the prompt
unless ``show_admissible=False``; a transcript then depends only on the task, the observations and the
actions, so it can be rebuilt token for token from recorded transitions (what behaviour cloning,
:func:`~dreamgym_sdk.policies.bc.behaviour_clone`, trains on).

**Recorded samples.** ``act`` returns an :class:`~dreamgym_sdk.types.Action`: the action text carrying a
:class:`~dreamgym_sdk.types.Sample` (prompt token ids, completion token ids, the log-probabilities of the
completion tokens under the sampling distribution, the policy version). Recording envs store the sample
on the transition the action becomes, so RL backends train on the episode itself, wherever it was played
(this process, a Ray worker, a serve client). The :class:`Policy` protocol is unchanged: an ``Action`` is a
``str``.

**Batching.** Concurrent ``act`` calls are coalesced: one waiting caller takes every queued request, runs
one left-padded ``model.generate`` call for all of them in a worker thread (``anyio.to_thread.run_sync``),
then wakes the others. No background task: nothing outlives the calls. :attr:`HFPolicy.stats` counts the
batches and their sizes.

**Sampling.** Tokens are drawn by the policy's own seeded ``torch.Generator`` from
``softmax(logits / temperature)`` (no top-k/top-p: the recorded log-probabilities are exactly those of the
distribution a trainer computes at the same temperature). ``temperature=0`` is greedy. With
``constrain_to_admissible``, decoding is restricted to the token paths of the admissible actions (a prefix
trie), so the reply is always one of them. Each token is then drawn from the model's distribution
renormalised over the tokens the trie allows at that point, and that is the distribution recorded: the
allowed token ids of every step (:attr:`SampledAction.allowed`) and the log-probability under the
renormalised distribution (0 where the trie forces a token). Trainers score actions the same way, so they
raise or lower the probability of the action among the admissible ones, which is what changes behaviour;
the model's unconstrained log-probability would mostly move the mass outside the admissible set, which
decoding never sees. Without the constraint, the reply is parsed (first line, ``Action:`` prefixes dropped)
and, with ``snap_to_admissible``, mapped to the closest admissible action; the transcript keeps what the
model actually wrote.

**Training in place.** A trainer updates :attr:`HFPolicy.model` in place. Generation holds
:attr:`HFPolicy.weights_lock` (a ``threading.Lock``) for each batch; trainers hold it while they write the
weights (the optimizer step), so a batch never sees half-updated weights. :attr:`HFPolicy.version` counts
the weight writes (optimizer steps, loads); every sample records the version it was drawn with.

Needs the ``hf`` extra (torch, transformers); nothing heavy is imported until a model is loaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dreamgym_sdk._imports import require
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.policies.base import admissible_actions
from dreamgym_sdk.policies.llm import parse_action
from dreamgym_sdk.providers._batching import BatchJob, DynamicBatcher
from dreamgym_sdk.types import Action, Sample, Task, Transition

__all__ = [
    "POLICY_CONFIG_FILE",
    "HFPolicy",
    "HFPolicyConfig",
    "saved_policy_config",
]

SYSTEM_PROMPT = (
    "You are an agent acting in a text environment. Each turn you see the current observation. "
    "Reply with exactly one action on a single line and nothing else."
)

FALLBACK_CHAT_TEMPLATE = (
    "{%- for message in messages %}{{ message['role'] + ': ' + message['content'] + eos_token + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ 'assistant: ' }}{%- endif %}"
)
"""Used when the tokenizer has no chat template of its own."""


class HFPolicyConfig(BaseModel):
    """How :class:`HFPolicy` prompts and samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system_prompt: str = SYSTEM_PROMPT
    prompt_style: Literal["transcript", "window"] = "transcript"
    """``transcript``: one growing chat per episode (an episode is one token sequence); ``window``: a fresh
    prompt per step with the last ``history_window`` steps summarised."""
    history_window: int = Field(default=8, ge=0)
    """Steps shown in ``window`` prompts."""
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    """In ``transcript`` style, a prompt longer than this starts over as a ``window`` prompt (the episode is
    then no longer one sequence). ``None``: never."""
    temperature: float = Field(default=1.0, ge=0.0)
    """Sampling temperature; 0 is greedy. RL backends need the same temperature as the policy (> 0)."""
    max_new_tokens: int = Field(default=16, ge=1)
    """Most tokens per action (the end-of-turn token included)."""
    seed: int | None = 0
    """Seed of the policy's sampling generator (``None``: fresh entropy). With the same batches in the
    same order, a run samples the same tokens."""
    actions: tuple[str, ...] = ()
    """The admissible actions when ``info`` lists none (e.g. a DreamEnv whose experience model reports
    none): shown in the prompt (with ``show_admissible``), constrained to and snapped to like
    ``info["admissible_commands"]``."""
    constrain_to_admissible: bool = False
    """Restrict decoding to the admissible actions (when ``info`` lists them)."""
    snap_to_admissible: bool = True
    """Without the constraint, map a free reply to the closest admissible action."""
    show_admissible: bool = True
    """List the admissible actions in the prompt. ``False`` leaves them out (decoding can still be restricted
    to them with ``constrain_to_admissible``), so a prompt depends only on the task, the observations and the
    actions."""
    max_admissible_shown: int = Field(default=50, ge=1)
    max_batch_size: int = Field(default=32, ge=1)
    """Most ``act`` calls in one ``generate`` call."""
    record_samples: bool = True
    """Attach a :class:`~dreamgym_sdk.types.Sample` to every action (turn off for pure evaluation)."""

    @model_validator(mode="before")
    @classmethod
    def _drop_retired_fields(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # saved before samples moved onto transitions (the policy kept them in a bounded ledger)
        return {k: v for k, v in cast(dict[str, Any], data).items() if k != "max_recorded_episodes"}


@dataclass(eq=False, kw_only=True)
class _Job(BatchJob):
    prompt_ids: list[int]
    candidates: list[list[int]] | None
    completion: list[int] | None = None
    logprobs: list[float] | None = None
    allowed: list[tuple[int, ...]] | None = None


class HFPolicy:
    """A local causal LM that chooses actions, records what it sampled and can be trained in place.

    ```python
    policy = HFPolicy.from_pretrained("path/to/model", HFPolicyConfig(temperature=1.0))
    action = await policy.act(task, observation, history, info)
    sample = sample_of(action)  # what was sampled; a recording env stores it on the transition
    ```

    Args:
        model: a ``transformers`` causal LM (shared with the trainer, which updates it in place).
        tokenizer: its tokenizer; a chat template is used when it has one.
        config: prompting and sampling options.
    """

    def __init__(self, model: Any, tokenizer: Any, config: HFPolicyConfig | None = None) -> None:
        torch = require("torch", extra="hf", feature="HFPolicy")
        self.model: Any = model
        self.tokenizer: Any = tokenizer
        self.config = config or HFPolicyConfig()
        self.name: str | None = str(getattr(model.config, "_name_or_path", "") or "") or None
        """The model's path or hub id (recorded on every sample)."""
        self._batcher = DynamicBatcher[_Job](
            self._generate_batch,
            max_batch_size=self.config.max_batch_size,
            interrupted=lambda: RuntimeError("HFPolicy: generation was interrupted"),
        )
        self.stats = self._batcher.stats
        """Batching statistics: requests, ``generate`` calls and batch sizes."""
        self.weights_lock = threading.Lock()
        """Held by generation for each batch and by trainers while they write the weights."""
        self.version = 0
        """Weight writes so far: trainers increment it at every optimizer step, ``load_weights`` too."""
        if getattr(tokenizer, "pad_token_id", None) is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
        self.eos_ids = _eos_ids(model, tokenizer)
        seed = self.config.seed if self.config.seed is not None else int.from_bytes(os.urandom(8), "little")
        self.generator: Any = torch.Generator(device=model.device).manual_seed(seed)
        """The sampling generator (its state is part of a trainer checkpoint)."""
        self._turn_prefix: list[int] | None = None
        model.eval()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        config: HFPolicyConfig | None = None,
        *,
        device: str | None = None,
        dtype: str = "float32",
    ) -> HFPolicy:
        """Load a model and tokenizer saved with ``save_pretrained`` (blocking; no network access needed for
        a local path).

        Args:
            path: a local directory (or a hub id already in the local cache).
            config: prompting and sampling options; default: those saved with the policy by
                :meth:`save_pretrained` (see :func:`saved_policy_config`), else ``HFPolicyConfig()``.
            device: where to put the model (``"cpu"``, ``"cuda:0"``); default CPU.
            dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"auto"``.
        """
        torch = require("torch", extra="hf", feature="HFPolicy")
        transformers = require("transformers", extra="hf", feature="HFPolicy")
        config = config or saved_policy_config(path) or HFPolicyConfig()
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        if device is not None:
            model = model.to(device)
        return cls(model, tokenizer, config)

    def save_pretrained(self, directory: str | Path) -> None:
        """Save the model, the tokenizer and how the policy acts (its :class:`HFPolicyConfig`, in
        ``dreamgym_policy.json``), so ``HFPolicy.from_pretrained(directory)`` acts as this policy does:
        same prompts, same admissible-action constraint, same decoding (blocking)."""
        directory = Path(directory)
        with self.weights_lock:
            self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        (directory / POLICY_CONFIG_FILE).write_text(self.config.model_dump_json(indent=2) + "\n")

    def get_weights(self) -> dict[str, Any]:
        """A CPU copy of the model's weights (its ``state_dict``), consistent with :attr:`version`: what a
        trainer sends to policy copies elsewhere (:meth:`set_weights`)."""
        with self.weights_lock:
            return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: Mapping[str, Any], *, version: int) -> None:
        """Load weights from :meth:`get_weights` of another copy, in place, and take on its ``version``
        (so samples drawn from now on name the trainer's version and their staleness can be measured)."""
        with self.weights_lock:
            try:
                self.model.load_state_dict(dict(weights))
            except RuntimeError as exc:  # torch lists the missing and unexpected keys
                raise ConfigError(
                    "these weights do not fit this policy's model (a copy trained with LoRA adapters needs "
                    f"the same adapters here): {str(exc)[:300]}"
                ) from None
            self.version = version

    def load_weights(self, path: str | Path, *, version: int | None = None) -> None:
        """Load weights into the model in place (blocking).

        ``path`` is a ``.safetensors`` file, a trainer checkpoint directory (its ``weights.safetensors``) or a
        ``save_pretrained`` directory (its ``model.safetensors``). Increments :attr:`version`, or sets it to
        ``version`` (the trainer's, when this is a copy that acts elsewhere: a served or remote agent).
        """
        safetensors_torch = require("safetensors.torch", extra="hf", feature="HFPolicy.load_weights")
        file = Path(path)
        if file.is_dir():
            file = next(
                (file / n for n in ("weights.safetensors", "model.safetensors") if (file / n).exists()), file
            )
        if not file.is_file():
            raise FileNotFoundError(f"no weights file at {path}")
        with self.weights_lock:
            missing, unexpected = safetensors_torch.load_model(self.model, str(file), strict=False)
        tied = {k for k in cast(list[str], missing) if k.endswith("lm_head.weight")}
        if set(cast(list[str], missing)) - tied or unexpected:
            raise ConfigError(
                f"weights at {file} do not match the model: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        self.version = self.version + 1 if version is None else version

    # -- prompts -------------------------------------------------------------------------------------

    def prompt_ids(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> list[int]:
        """The prompt token ids for one decision (what ``act`` conditions the model on)."""
        cfg = self.config
        if cfg.prompt_style == "transcript":
            ids = self._transcript_ids(task, observation, history, info)
            if cfg.max_prompt_tokens is None or len(ids) <= cfg.max_prompt_tokens:
                return ids
        return self._render(self.window_messages(task, observation, history, info))

    def first_turn(self, task: Task, observation: str, info: Mapping[str, Any]) -> str:
        """The first user message of a transcript: the task, the observation and (with ``show_admissible``)
        the admissible actions."""
        return f"Task: {task.instruction}\n\nObservation:\n{observation}{self._admissible_text(info)}"

    def next_turn(self, observation: str, info: Mapping[str, Any]) -> str:
        """A later user message of a transcript: the new observation and (with ``show_admissible``) the
        admissible actions."""
        return f"Observation:\n{observation}{self._admissible_text(info)}"

    def window_messages(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        """The chat messages of a ``window`` prompt."""
        window = self.config.history_window
        shown = history[-window:] if window else ()
        lines = [f"Task: {task.instruction}"]
        if len(history) > len(shown):
            lines.append(f"({len(history) - len(shown)} earlier step(s) omitted)")
        lines += [f"Step {t.step}: action: {t.action} -> {t.next_state}" for t in shown]
        lines.append(f"Current state:\n{observation}{self._admissible_text(info)}")
        lines.append("Your action:")
        return [
            {"role": "system", "content": self.config.system_prompt},
            {"role": "user", "content": "\n".join(lines)},
        ]

    def admissible(self, info: Mapping[str, Any]) -> list[str]:
        """The admissible actions: ``info["admissible_commands"]`` (or ``admissible_actions``), else the
        configured ``actions``."""
        return admissible_actions(info) or list(self.config.actions)

    def _admissible_text(self, info: Mapping[str, Any]) -> str:
        if not self.config.show_admissible:
            return ""
        admissible = self.admissible(info)[: self.config.max_admissible_shown]
        return "\n\nAdmissible actions: " + "; ".join(admissible) if admissible else ""

    def _transcript_ids(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> list[int]:
        previous = history[-1].sample if history else None
        if previous is not None:  # extend the previous prompt token for token
            ids = [*previous.prompt_ids, *previous.completion_ids]
            if not previous.finished:
                ids.append(self.eos_ids[0])
            return ids + self._turn_suffix_ids(self.next_turn(observation, info))
        # no recorded previous step: render the transcript from text
        messages = [{"role": "system", "content": self.config.system_prompt}]
        first_obs = history[0].state if history else observation
        messages.append(
            {"role": "user", "content": self.first_turn(task, first_obs, info if not history else {})}
        )
        for i, t in enumerate(history):
            messages.append({"role": "assistant", "content": t.action})
            last = i == len(history) - 1
            messages.append({"role": "user", "content": self.next_turn(t.next_state, info if last else {})})
        return self._render(messages)

    def _render(self, messages: list[dict[str, str]]) -> list[int]:
        ids: Any = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return [int(i) for i in ids]

    def _turn_suffix_ids(self, content: str) -> list[int]:
        """Tokens between the end of an assistant turn and the next generation: the new user turn."""
        base = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
        if self._turn_prefix is None:
            prefix: Any = self.tokenizer.apply_chat_template(
                base, add_generation_prompt=False, tokenize=True, return_dict=False
            )
            ids = [int(i) for i in prefix]
            ends = [i for i, t in enumerate(ids) if t in self.eos_ids]
            self._turn_prefix = ids[: ends[-1] + 1] if ends else ids
        full = self._render([*base, {"role": "user", "content": content}])
        if full[: len(self._turn_prefix)] != self._turn_prefix:
            raise ConfigError(
                "the chat template does not render an assistant turn ending with the end-of-turn token; "
                "use prompt_style='window' with this tokenizer"
            )
        return full[len(self._turn_prefix) :]

    # -- acting --------------------------------------------------------------------------------------

    async def act(
        self, task: Task, observation: str, history: Sequence[Transition], info: Mapping[str, Any]
    ) -> str:
        """Sample the next action (batched with concurrent calls) and record what was sampled."""
        admissible = self.admissible(info)
        prompt = self.prompt_ids(task, observation, history, info)
        candidates = None
        if self.config.constrain_to_admissible and admissible:
            candidates = [[*self._encode(a), self.eos_ids[0]] for a in admissible]
        job = await self._batcher.submit(_Job(prompt_ids=prompt, candidates=candidates))
        assert job.completion is not None and job.logprobs is not None
        completion = job.completion
        finished = bool(completion) and completion[-1] in self.eos_ids
        body = completion[:-1] if finished else completion
        text = str(self.tokenizer.decode(body, skip_special_tokens=True))
        if candidates is not None:
            action = admissible[candidates.index(completion)] if completion in candidates else text.strip()
        else:
            action = parse_action(text, admissible if self.config.snap_to_admissible else ())
        if not self.config.record_samples:
            return action
        return Action(
            action,
            Sample(
                prompt_ids=tuple(prompt),
                completion_ids=tuple(completion),
                logprobs=tuple(job.logprobs),
                allowed=tuple(job.allowed or ()),
                temperature=self.config.temperature,
                policy_version=self.version,
                finished=finished,
                text=text,
                model=self.name,
            ),
        )

    def _encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    # -- blocking work, in a worker thread -----------------------------------------------------------

    def _generate_batch(self, jobs: list[_Job]) -> None:
        with self.weights_lock:
            self._generate(jobs)

    def _generate(self, jobs: list[_Job]) -> None:
        torch = require("torch", extra="hf", feature="HFPolicy")
        transformers = require("transformers", extra="hf", feature="HFPolicy")
        model, pad = self.model, int(self.tokenizer.pad_token_id)
        width = max(len(job.prompt_ids) for job in jobs)
        rows = [[pad] * (width - len(job.prompt_ids)) + job.prompt_ids for job in jobs]
        mask = [[0] * (width - len(job.prompt_ids)) + [1] * len(job.prompt_ids) for job in jobs]
        limits = [
            max(len(c) for c in job.candidates) if job.candidates else self.config.max_new_tokens
            for job in jobs
        ]
        sampler = _Sampler(
            torch, self.config.temperature, self.generator, [j.candidates for j in jobs], width
        )
        generation_config = transformers.GenerationConfig(
            do_sample=False, max_new_tokens=max(limits), pad_token_id=pad, eos_token_id=self.eos_ids
        )
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor(rows, device=model.device),
                attention_mask=torch.tensor(mask, device=model.device),
                generation_config=generation_config,
                logits_processor=transformers.LogitsProcessorList([sampler]),
            )
        logprobs = sampler.logprobs()
        for i, job in enumerate(jobs):
            new = [int(t) for t in out[i, width:].tolist()][: limits[i]]
            cut = next((k for k, t in enumerate(new) if t in self.eos_ids), None)
            completion = new if cut is None else new[: cut + 1]
            job.logprobs = logprobs[i][: len(completion)]
            job.allowed = sampler.allowed[i][: len(completion)] if job.candidates else None
            job.completion = completion


class _Sampler:
    """Logits processor that samples each row's token with the policy's generator and records its
    log-probability; for constrained rows only tokens on an admissible action's path are allowed, the
    distribution is renormalised over them, and the allowed ids are recorded.

    Returns scores that are 0 at the chosen token and -inf elsewhere, so greedy decoding keeps it.
    """

    def __init__(
        self,
        torch: Any,
        temperature: float,
        generator: Any,
        candidates: list[list[list[int]] | None],
        prompt_width: int,
    ) -> None:
        self.torch = torch
        self.temperature = temperature
        self.generator = generator
        self.candidates = candidates
        self.prompt_width = prompt_width
        self.allowed: list[list[tuple[int, ...]]] = [[] for _ in candidates]
        """Per row, per generated token, the allowed token ids (constrained rows only)."""
        self._steps: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        logits = scores.float()
        logp = torch.log_softmax(logits / self.temperature if self.temperature > 0 else logits, dim=-1)
        allowed = torch.zeros_like(logp, dtype=torch.bool)
        constrained = False
        for row, cands in enumerate(self.candidates):
            if cands is None:
                continue
            constrained = True
            done = [int(t) for t in input_ids[row, self.prompt_width :].tolist()]
            nxt = sorted({c[len(done)] for c in cands if len(c) > len(done) and c[: len(done)] == done})
            if not nxt:  # finished (or off every path): keep emitting the end token
                nxt = [cands[0][-1]]
            allowed[row, nxt] = True
            self.allowed[row].append(tuple(nxt))
        if constrained:
            free = torch.tensor([c is None for c in self.candidates], device=logp.device)
            allowed |= free[:, None]
            # the distribution decoding draws from: renormalised over the allowed tokens
            logp = torch.log_softmax(logp.masked_fill(~allowed, -torch.inf), dim=-1)
        if self.temperature > 0:
            choice = torch.multinomial(logp.exp(), 1, generator=self.generator).squeeze(1)
        else:
            choice = logp.argmax(dim=-1)
        self._steps.append(logp.gather(1, choice[:, None]).squeeze(1))
        out = torch.full_like(scores, -torch.inf)
        out.scatter_(1, choice[:, None], 0.0)
        return out

    def logprobs(self) -> list[list[float]]:
        """Per row, the log-probability of every generated token."""
        if not self._steps:
            return [[] for _ in self.candidates]
        table = self.torch.stack(self._steps, dim=1).tolist()
        return [[float(x) for x in row] for row in table]


POLICY_CONFIG_FILE = "dreamgym_policy.json"
"""Where :meth:`HFPolicy.save_pretrained` keeps the policy's :class:`HFPolicyConfig`."""


def saved_policy_config(path: str | Path) -> HFPolicyConfig | None:
    """The :class:`HFPolicyConfig` saved with a policy directory, or ``None`` when it has none (a plain
    Hugging Face model directory or hub id)."""
    file = Path(path) / POLICY_CONFIG_FILE
    return HFPolicyConfig.model_validate_json(file.read_text()) if file.is_file() else None


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: Any = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    values: list[Any] = list(ids) if isinstance(ids, list | tuple) else [ids]  # pyright: ignore[reportUnknownArgumentType]
    eos = [int(i) for i in values if i is not None]
    if tokenizer.eos_token_id is not None:  # the tokenizer's end token first: it closes unfinished turns
        first = int(tokenizer.eos_token_id)
        eos = [first, *(i for i in eos if i != first)]
    if not eos:
        raise ConfigError("the tokenizer has no end-of-sequence token")
    return eos
