"""Scoring tokens as they were sampled: log-probabilities under the model's distribution, renormalised over
the tokens constrained decoding allowed (see :class:`~dreamgym_sdk.policies.HFPolicy`).

Both RL backends score through :func:`score_tokens`, so the probability a trainer raises or lowers is the
probability of the action among the admissible ones, the distribution the action was drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["score_tokens"]


def score_tokens(
    torch: Any,
    logits: Any,
    targets: Any,
    allowed: Sequence[tuple[int, ...]] | None = None,
    *,
    with_entropy: bool = False,
) -> tuple[Any, Any]:
    """Log-probability (and optionally entropy) of each target token; returns ``(logprobs, entropy)``.

    Args:
        torch: the torch module.
        logits: ``(N, vocab)`` temperature-scaled logits, one row per scored position.
        targets: ``(N,)`` the token ids that were sampled.
        allowed: per position, the token ids decoding could choose from; ``()`` (or ``None`` for every
            position) scores under the whole vocabulary.
        with_entropy: also return each position's entropy (``None`` otherwise).

    Raises:
        ValueError: a target token lies outside its allowed ids.
    """
    sets: Sequence[tuple[int, ...]] = allowed or ()
    constrained = [i for i, ids in enumerate(sets) if ids]
    if constrained:
        keep = torch.zeros_like(logits, dtype=torch.bool)
        rows = [i for i in constrained for _ in sets[i]]
        cols = [t for i in constrained for t in sets[i]]
        keep[torch.tensor(rows, device=logits.device), torch.tensor(cols, device=logits.device)] = True
        free = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        free[torch.tensor(constrained, device=logits.device)] = False
        logits = logits.masked_fill(~(keep | free[:, None]), -torch.inf)
    logp = torch.log_softmax(logits, dim=-1)
    scores = logp.gather(-1, targets[:, None]).squeeze(-1)
    if constrained and bool(torch.isinf(scores).any()):
        raise ValueError("a sampled token lies outside the token ids its step allowed")
    entropy = None
    if with_entropy:
        entropy = -(logp.exp() * logp.masked_fill(torch.isinf(logp), 0.0)).sum(-1)
    return scores, entropy
