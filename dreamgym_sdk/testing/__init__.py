"""Public test doubles and conformance checks.

Use the doubles where the real part cannot run (hosted APIs, GPUs) and the ``check_*`` functions to test
your own implementations of the SDK's protocols.
"""

from dreamgym_sdk.testing.conformance import check_env
from dreamgym_sdk.testing.doubles import (
    FunctionExperienceModel,
    FunctionPolicy,
    FunctionProvider,
    RecordingTrainer,
    ScriptedExperienceModel,
    ScriptedPolicy,
    ScriptedProvider,
    ScriptExhaustedError,
)

__all__ = [
    "FunctionExperienceModel",
    "FunctionPolicy",
    "FunctionProvider",
    "RecordingTrainer",
    "ScriptExhaustedError",
    "ScriptedExperienceModel",
    "ScriptedPolicy",
    "ScriptedProvider",
    "check_env",
]
