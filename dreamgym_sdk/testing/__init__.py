"""Public test doubles and conformance checks.

Use the doubles where the real part cannot run (hosted APIs, GPUs) and the ``check_*`` functions to test
your own implementations of the SDK's protocols.
"""

from dreamgym_sdk.testing.conformance import check_env
from dreamgym_sdk.testing.doubles import (
    FunctionExperienceModel,
    FunctionPolicy,
    RecordingTrainer,
    ScriptedExperienceModel,
    ScriptedPolicy,
    ScriptExhaustedError,
)

__all__ = [
    "FunctionExperienceModel",
    "FunctionPolicy",
    "RecordingTrainer",
    "ScriptExhaustedError",
    "ScriptedExperienceModel",
    "ScriptedPolicy",
    "check_env",
]
