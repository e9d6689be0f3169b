"""The experience replay buffer: real and synthetic transitions, retrieved to ground the simulator."""

from dreamgym_sdk.replay.base import Retriever, SearchHit

__all__ = ["Retriever", "SearchHit"]
