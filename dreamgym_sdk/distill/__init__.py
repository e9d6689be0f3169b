"""From real transitions to your own experience model: annotate, build SFT data, distil, measure fidelity.

```python
from dreamgym_sdk.distill import DatasetConfig, DistillConfig, build_dataset, distill, evaluate_fidelity
from dreamgym_sdk.integrations.textworld import RuleBasedAnnotator, annotate_textworld
```

1. **Annotate** real transitions with reasoning traces: TextWorld's
   :class:`~dreamgym_sdk.integrations.textworld.RuleBasedAnnotator` (ground truth recovered by replaying
   the games) or :class:`LLMAnnotator` (a teacher model);
   :func:`annotate_transitions` runs either and records each trace's provenance (:class:`Annotation`).
2. **Build** SFT examples with :func:`build_dataset`: the reasoning experience model's exact prompt
   (history, retrieved real transitions) and the contract's JSON as the target, split by task.
3. **Distil** with :func:`distill` (TRL SFT, loss on the answer): a tiny student with a tokenizer trained
   on the data by default, any Hugging Face model (optionally LoRA) on a GPU. The output directory loads as
   ``hf:<dir>``; :func:`open_experience_model` opens it with the prompt settings it was trained on.
4. **Evaluate** with :func:`evaluate_fidelity` on held-out real transitions: reward, done and success
   accuracy, next-state exact match and token F1, invalid-action handling, ablations, an optional judge.

Importing this package does not import torch, transformers, trl or textworld; the functions that need
them import them when called.
"""

import importlib
import warnings

from dreamgym_sdk.distill.annotate import (
    AnnotatedData,
    Annotation,
    AnnotationRequest,
    Annotator,
    annotate_transitions,
    annotations_path,
    read_annotated,
    read_annotations,
    read_tasks,
    write_annotated,
    write_tasks,
)
from dreamgym_sdk.distill.card import (
    CARD_FILE,
    REPLAY_FILE,
    DistilledModelCard,
    TrainingSummary,
    open_experience_model,
    read_card,
    read_replay,
)
from dreamgym_sdk.distill.dataset import (
    VARIANTS,
    DatasetConfig,
    DistillDataset,
    SFTExample,
    Variant,
    build_dataset,
    build_examples,
    experience_target,
    read_examples,
    split_by_task,
    target_reward,
    write_examples,
)
from dreamgym_sdk.distill.fidelity import FidelityConfig, FidelityRun, VariantResult, evaluate_fidelity
from dreamgym_sdk.distill.ground_truth import GroundTruthReport, StepGroundTruth, episodes_of
from dreamgym_sdk.distill.llm import LLM_ANNOTATOR_VERSION, LLMAnnotator, LLMAnnotatorConfig
from dreamgym_sdk.distill.metrics import (
    FidelityMetrics,
    InvalidActionMetrics,
    PositiveRecall,
    Reference,
    ScoredPrediction,
    exact_match,
    score_predictions,
    state_kept,
    token_f1,
)
from dreamgym_sdk.distill.sft import DistillConfig, DistillResult, TrainingProgress, distill, distill_sync
from dreamgym_sdk.distill.tiny import StudentConfig, build_student
from dreamgym_sdk.policies.collection import InvalidActionPolicy, invalid_actions

__all__ = [
    "CARD_FILE",
    "LLM_ANNOTATOR_VERSION",
    "REPLAY_FILE",
    "VARIANTS",
    "AnnotatedData",
    "Annotation",
    "AnnotationRequest",
    "Annotator",
    "DatasetConfig",
    "DistillConfig",
    "DistillDataset",
    "DistillResult",
    "DistilledModelCard",
    "FidelityConfig",
    "FidelityMetrics",
    "FidelityRun",
    "GroundTruthReport",
    "InvalidActionMetrics",
    "InvalidActionPolicy",
    "LLMAnnotator",
    "LLMAnnotatorConfig",
    "PositiveRecall",
    "Reference",
    "SFTExample",
    "ScoredPrediction",
    "StepGroundTruth",
    "StudentConfig",
    "TrainingProgress",
    "TrainingSummary",
    "Variant",
    "VariantResult",
    "annotate_transitions",
    "annotations_path",
    "build_dataset",
    "build_examples",
    "build_student",
    "distill",
    "distill_sync",
    "episodes_of",
    "evaluate_fidelity",
    "exact_match",
    "experience_target",
    "invalid_actions",
    "open_experience_model",
    "read_annotated",
    "read_annotations",
    "read_card",
    "read_examples",
    "read_replay",
    "read_tasks",
    "score_predictions",
    "split_by_task",
    "state_kept",
    "target_reward",
    "token_f1",
    "write_annotated",
    "write_examples",
    "write_tasks",
]

_MOVED_TO_TEXTWORLD = frozenset(
    {
        "PolicyMix",
        "RULES_VERSION",
        "RuleBasedAnnotator",
        "annotate_textworld",
        "collect_textworld",
        "collection_policy",
        "explain_step",
        "explore_textworld",
        "references_from",
        "replay_ground_truth",
        "textworld_tasks",
    }
)


def __getattr__(name: str) -> object:
    """The TextWorld pipeline's names, which moved to :mod:`dreamgym_sdk.integrations.textworld`, still
    resolve here, with a :class:`DeprecationWarning` (to be removed in 0.3)."""
    if name not in _MOVED_TO_TEXTWORLD:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"dreamgym_sdk.distill.{name} moved to dreamgym_sdk.integrations.textworld.{name}; "
        "import it from there (this alias goes in 0.3)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module("dreamgym_sdk.integrations.textworld"), name)
