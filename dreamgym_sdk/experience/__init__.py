"""Experience models: what replaces the real environment during training.

- :class:`ReasoningExperienceModel` (with :class:`ReasoningConfig`): an LLM that reasons its way to the
  next state and reward, grounded by retrieved real transitions;
- prompts (:func:`build_messages`, :class:`PromptTemplate`) and output parsing
  (:func:`parse_experience_output`), shared with distillation;
- state mappers (:class:`StateMapper`, :class:`IdentityMapper`, :class:`HtmlStateMapper`);
- the task-variation hook (:class:`TaskVariationGenerator`) and the fidelity judge (:class:`FidelityJudge`).
"""

from dreamgym_sdk.experience.base import (
    ExperienceModel,
    ExperienceOutput,
    ExperienceRequest,
    Prediction,
    derive_seed,
)
from dreamgym_sdk.experience.judge import (
    CRITERIA,
    FidelityJudge,
    FidelityReport,
    JudgeConfig,
    TransitionJudgement,
    sample_transitions,
)
from dreamgym_sdk.experience.mappers import HtmlStateMapper, IdentityMapper, StateMapper
from dreamgym_sdk.experience.observation import (
    AGENTWORLD_SYSTEM_PROMPT,
    ObservationWorldModel,
    parse_predicted_observation,
)
from dreamgym_sdk.experience.parsing import ParsedOutput, parse_experience_output
from dreamgym_sdk.experience.prompts import (
    DEFAULT_TEMPLATE,
    PromptTemplate,
    build_messages,
    experience_schema,
    render_history,
)
from dreamgym_sdk.experience.reasoning import ReasoningConfig, ReasoningExperienceModel
from dreamgym_sdk.experience.rewards import (
    JudgeReward,
    ModelReward,
    RescoreReport,
    RewardedExperienceModel,
    RewardSource,
    RewardVerdict,
    RuleReward,
    rescore,
    with_reward,
)
from dreamgym_sdk.experience.tasks import TaskCandidate, TaskGenerationConfig, TaskVariationGenerator

__all__ = [
    "AGENTWORLD_SYSTEM_PROMPT",
    "CRITERIA",
    "DEFAULT_TEMPLATE",
    "ExperienceModel",
    "ExperienceOutput",
    "ExperienceRequest",
    "FidelityJudge",
    "FidelityReport",
    "HtmlStateMapper",
    "IdentityMapper",
    "JudgeConfig",
    "JudgeReward",
    "ModelReward",
    "ObservationWorldModel",
    "ParsedOutput",
    "Prediction",
    "PromptTemplate",
    "ReasoningConfig",
    "ReasoningExperienceModel",
    "RescoreReport",
    "RewardSource",
    "RewardVerdict",
    "RewardedExperienceModel",
    "RuleReward",
    "StateMapper",
    "TaskCandidate",
    "TaskGenerationConfig",
    "TaskVariationGenerator",
    "TransitionJudgement",
    "build_messages",
    "derive_seed",
    "experience_schema",
    "parse_experience_output",
    "parse_predicted_observation",
    "render_history",
    "rescore",
    "sample_transitions",
    "with_reward",
]
