"""Policies: the agents that act in real and synthetic environments, and behaviour cloning of a local one.

Heavy dependencies (torch, transformers) load only when an :class:`HFPolicy` is created.
"""

from dreamgym_sdk.policies.base import Policy, admissible_actions
from dreamgym_sdk.policies.baselines import RandomPolicy
from dreamgym_sdk.policies.bc import (
    BCConfig,
    BCResult,
    Demonstration,
    TinyPolicyConfig,
    behaviour_clone,
    build_policy_model,
    demonstration,
)
from dreamgym_sdk.policies.hf import (
    HFPolicy,
    HFPolicyConfig,
    saved_policy_config,
)
from dreamgym_sdk.policies.llm import LLMPolicy, LLMPolicyConfig, parse_action

__all__ = [
    "BCConfig",
    "BCResult",
    "Demonstration",
    "HFPolicy",
    "HFPolicyConfig",
    "LLMPolicy",
    "LLMPolicyConfig",
    "Policy",
    "RandomPolicy",
    "TinyPolicyConfig",
    "admissible_actions",
    "behaviour_clone",
    "build_policy_model",
    "demonstration",
    "parse_action",
    "saved_policy_config",
]
