"""What ``dreamgym demo`` runs: sizes, budgets, models and seeds, with a full and a ``quick`` preset."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dreamgym_sdk.distill.dataset import Variant
from dreamgym_sdk.integrations.textworld.games import CookingSpec

__all__ = ["ARMS", "MODES", "DemoConfig"]

ARMS = ("random", "sft", "real-rl", "dreamgym", "dreamgym-s2r")
"""The compared policies, in display order."""

MODES = ("greedy", "sampled")
"""How the trained policies act in the evaluation: temperature 0, or temperature 1 as they were trained."""


class DemoConfig(BaseModel):
    """Settings of :func:`~dreamgym_sdk.demo.run_demo`. The defaults are the documented full run; see
    :meth:`quick` for the reduced one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    game: CookingSpec = CookingSpec(split="train", open=True)
    """The TextWorld cooking games: by default one room and one ingredient to find (in a container that may be
    closed), a meal to prepare and eat; three points, one per step of the recipe. ``--set game.recipe=2
    --set game.take=2 --set game.cut=true`` makes harder ones."""
    train_games: int = Field(default=60, ge=2)
    """TextWorld cooking games to collect offline data and train on (seeds ``0..train_games-1``)."""
    held_out_games: int = Field(default=40, ge=1)
    """Games only ever used for the final evaluation (seeds from ``held_out_seed`` on)."""
    held_out_seed: int | None = Field(default=None, ge=0)
    """Seed of the first held-out game; ``None``: the seed after the last training game. A documented run
    sets one no earlier run looked at, so no choice was tuned on the games it reports."""
    episodes_per_game: int = Field(default=5, ge=1)
    """Offline episodes collected per training game (expert, noisy expert and random players)."""
    exploration_episodes_per_game: int = Field(default=5, ge=0)
    """Random players' episodes per training game that only the experience model learns from and
    retrieves (behaviour cloning never sees them). A game's own transition of the very action asked about
    is what a small experience model reads best; demonstrations rarely try the wrong ingredient, so without
    these the model granted such takes the points of the right one."""
    explore_solution_branches: bool = True
    """Also try every command the game admits in every state of each training game's solution, once
    (:func:`~dreamgym_sdk.integrations.textworld.explore_textworld`): the game's own answer to each wrong
    take and wrong cut the policy can make on its way, for the experience model only (about 150 short
    episodes per cooking game)."""
    max_steps: int = Field(default=20, ge=1)
    """Step limit of every episode, real or synthetic."""

    experience_model: str | None = None
    """``None``: distil a tiny local experience model from the offline data. Otherwise a directory written
    by ``dreamgym distill`` (``hf:DIR`` or ``DIR``) or a provider string (``openai/gpt-4o-mini``,
    ``vllm:Qwen/Qwen2.5-7B-Instruct``, ...), grounded on a LanceDB buffer of the offline data."""
    distill_steps: int = Field(default=1500, ge=1)
    """Optimizer steps of the distillation (batch 4)."""
    experience_variants: dict[Variant, float] = Field(
        default_factory=lambda: {"full": 0.55, "no-history": 0.15, "no-retrieval": 0.15, "no-reasoning": 0.15}
    )
    """Share of the distillation examples in each prompt variant (``DatasetConfig.ablation_mix``): the
    same model then also answers with one input switched off, for ablations. A short distillation cannot
    spare them: the quick preset trains the full prompt only."""
    experience_max_tokens: int = Field(default=320, ge=16)
    """Completion budget of one experience-model answer."""
    exact_replay: bool = False
    """A synthetic step whose very state and action a real transition of the same game shows gets the
    game's own outcome, without asking the model (``ReasoningConfig.exact_replay``). Off by default: with
    ``outcome_checks`` it closed the sim-vs-real gap but DreamGym trained worse (docs/results-demo.md,
    2026-12-08)."""
    outcome_checks: int = Field(default=0, ge=0, le=16)
    """A synthetic step the experience model rewards or ends is asked again this many times, sampled, and is
    told by the least rewarding answer (``ReasoningConfig.outcome_checks``; 0: off, the default, see
    ``exact_replay``)."""

    policy_model: str | None = None
    """``None``: a tiny Llama with a tokenizer trained on the offline data. Otherwise a Hugging Face
    model directory or hub id to start from (e.g. ``Qwen/Qwen2.5-0.5B-Instruct`` with ``device="cuda"``)."""
    device: str | None = None
    """Where the policy runs and trains (``None``: CPU)."""
    bc_epochs: int = Field(default=3, ge=1)
    """Behaviour-cloning epochs over the offline episodes (the SFT policy every RL arm starts from)."""
    bc_learning_rate: float = Field(default=2e-3, gt=0)

    rl_iterations: int = Field(default=10, ge=1)
    """Policy updates of real-environment RL and of DreamGym (the same number for both)."""
    tasks_per_iteration: int = Field(default=8, ge=1)
    group_size: int = Field(default=4, ge=2)
    """Rollouts per task (the GRPO group)."""
    rl_learning_rate: float = Field(default=5e-5, gt=0)
    rl_kl: float = Field(default=0.04, ge=0)
    """GRPO's KL coefficient against the SFT policy (keeps a small policy from drifting off what it knows)."""
    rl_reward: Literal["success", "return"] = "success"
    """What an episode is worth to GRPO: ``success`` (1 or 0, the paper's outcome reward) or ``return`` (the
    sum of step rewards). A learned experience model's step rewards can be farmed by repeating a rewarded
    step, which ``return`` invites; the real game's score cannot."""
    curriculum: bool = True
    """DreamGym's curriculum: after each update, the training games whose groups' rewards varied most seed
    variations (the game started from a state its real episodes reached, failed episodes' first:
    :class:`~dreamgym_sdk.curriculum.StartStateVariations`), at most one accepted per game."""
    synthetic_task_share: float = Field(default=0.5, ge=0, le=1)
    """λ: the largest share of generated variations among an iteration's tasks."""
    s2r_iterations: int = Field(default=4, ge=1)
    """At most this many real-environment updates after DreamGym (sim-to-real); fewer when the budget
    runs out."""
    s2r_tasks_per_iteration: int = Field(default=4, ge=1)
    """At most this many tasks per sim-to-real update: fewer when their worst case (``group_size`` episodes
    of ``max_steps`` steps each) could take the real transitions past ``real_share_cap``, so the cap holds
    exactly in every mode (a ``--quick`` run's budget may cover no update at all)."""
    real_share_cap: float = Field(default=0.1, gt=0, le=1)
    """Sim-to-real may use at most this share of real-environment RL's real transitions."""

    gap_tasks: int = Field(default=20, ge=1)
    """Training games on which the SFT policy plays twice in each environment to measure the sim-to-real
    gap (``results.json["gaps"]``)."""

    allow_idle_arms: bool = False
    """An RL stage that played no usable episode, or took no optimizer step, in all its iterations is an
    error (its score would be the policy it started from); ``True`` reports it as a warning in the summary
    instead."""

    seeds: tuple[int, ...] = (0,)
    """One run of every arm per seed (games, offline data and the experience model are shared); the
    documented run uses ``--seeds 3``."""
    eval_episodes_per_game: int = Field(default=1, ge=1)
    """Evaluation episodes per held-out game and mode."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError("seeds must be distinct")
        if self.held_out_seed is not None and self.held_out_seed < self.train_games:
            raise ValueError(
                f"held_out_seed ({self.held_out_seed}) must be at least train_games ({self.train_games}): "
                "the training games are seeds 0..train_games-1"
            )
        weights = self.experience_variants.values()
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("experience_variants needs non-negative weights with a positive sum")
        return self

    QUICK: ClassVar[dict[str, Any]] = {
        "train_games": 8, "held_out_games": 6, "episodes_per_game": 3, "exploration_episodes_per_game": 2,
        "max_steps": 10,
        "distill_steps": 1000, "experience_variants": {"full": 1.0}, "experience_max_tokens": 200,
        "bc_epochs": 2, "rl_iterations": 3,
        "tasks_per_iteration": 6, "group_size": 2, "rl_reward": "return", "s2r_iterations": 1,
        "s2r_tasks_per_iteration": 1, "gap_tasks": 2, "allow_idle_arms": True,
    }  # fmt: skip
    """What :meth:`quick` changes. The experience model trains 1,000 steps on the full prompt only (at 400
    steps, or with the ablation variants, it wrote unusable answers for most synthetic episodes).
    Real-environment RL and DreamGym each train on 18 groups, scored by their return (a weak policy's
    success is almost always 0, so groups would tie); S2R's real budget (10% of
    real-environment RL's ~330 real transitions) covers one group of two, which can tie: the summary then
    says so (``allow_idle_arms``), and CI checks that the other two arms took optimizer steps."""

    @classmethod
    def quick(cls, **overrides: object) -> DemoConfig:
        """A reduced run that checks the whole pipeline in a few minutes (its numbers mean little)."""
        return cls.model_validate(cls.QUICK | overrides)
