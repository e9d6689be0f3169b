"""Policies: the agents that act in real and synthetic environments.

Heavy dependencies (torch, transformers) load only when an :class:`HFPolicy` is created.
"""

from dreamgym_sdk.policies.base import Policy
from dreamgym_sdk.policies.baselines import RandomPolicy
from dreamgym_sdk.policies.hf import HFPolicy, HFPolicyConfig, SampledAction, SampleLedger
from dreamgym_sdk.policies.llm import LLMPolicy, LLMPolicyConfig, parse_action

__all__ = [
    "HFPolicy",
    "HFPolicyConfig",
    "LLMPolicy",
    "LLMPolicyConfig",
    "Policy",
    "RandomPolicy",
    "SampleLedger",
    "SampledAction",
    "parse_action",
]
