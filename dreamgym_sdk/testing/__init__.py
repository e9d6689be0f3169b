"""Public test doubles and conformance checks.

Use the doubles where the real part cannot run (hosted APIs, GPUs) and the ``check_*`` functions to test
your own implementations of the SDK's protocols.
"""

from dreamgym_sdk.testing.conformance import check_env, check_provider
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
from dreamgym_sdk.testing.openai_server import Fault, OpenAIServer, RecordedRequest, serve_in_subprocess
from dreamgym_sdk.testing.replay import check_replay_buffer
from dreamgym_sdk.testing.tiny_models import build_tiny_model, build_tiny_tokenizer, teach_tiny_model
from dreamgym_sdk.testing.worlds import (
    KEY_AND_DOOR_ACTIONS,
    KEY_AND_DOOR_PLAN,
    build_key_and_door_model,
    key_and_door_env,
    key_and_door_policy,
    key_and_door_tasks,
    success_rose,
)

__all__ = [
    "KEY_AND_DOOR_ACTIONS",
    "KEY_AND_DOOR_PLAN",
    "Fault",
    "FunctionExperienceModel",
    "FunctionPolicy",
    "FunctionProvider",
    "OpenAIServer",
    "RecordedRequest",
    "RecordingTrainer",
    "ScriptExhaustedError",
    "ScriptedExperienceModel",
    "ScriptedPolicy",
    "ScriptedProvider",
    "build_key_and_door_model",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "check_env",
    "check_provider",
    "check_replay_buffer",
    "key_and_door_env",
    "key_and_door_policy",
    "key_and_door_tasks",
    "serve_in_subprocess",
    "success_rose",
    "teach_tiny_model",
]
