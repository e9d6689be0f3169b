"""Policies: the agents that act in real and synthetic environments."""

from dreamgym_sdk.policies.base import Policy

__all__ = ["Policy"]
