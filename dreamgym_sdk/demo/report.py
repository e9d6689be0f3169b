"""The demo's results: one row per policy (mean over seeds with a 95% interval), a table and a plot."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from rich.table import Table

from dreamgym_sdk._imports import require
from dreamgym_sdk.demo.config import ARMS
from dreamgym_sdk.training.evaluate import EvalReport, PairedDifference, paired_difference, wilson_interval

__all__ = [
    "COMPARISONS",
    "ArmSummary",
    "compare",
    "differences_table",
    "plot_results",
    "results_table",
    "summarise",
]

COMPARISONS = (("real-rl", "sft"), ("dreamgym", "sft"), ("dreamgym-s2r", "real-rl"))
"""The differences the demo is about: does RL work at all, does DreamGym beat SFT without real
interaction, does sim-to-real match real-environment RL with a tenth of its real transitions."""

_LABELS = {
    "random": "random",
    "sft": "SFT only",
    "real-rl": "real-env RL",
    "dreamgym": "DreamGym",
    "dreamgym-s2r": "DreamGym-S2R",
}


def t95(degrees_of_freedom: int) -> float:
    """The two-sided 95% quantile of Student's t distribution (12.706 for 1 degree of freedom)."""
    stats = require("scipy.stats", extra="train", feature="t intervals over seeds")
    return float(stats.t.ppf(0.975, degrees_of_freedom))


class ArmSummary(BaseModel):
    """One policy's held-out results over every seed."""

    model_config = ConfigDict(frozen=True)

    arm: str
    label: str
    seeds: int
    success_rate: float
    """Mean over seeds of the held-out success rate."""
    ci95: tuple[float, float]
    """Over seeds: mean ± t·sd/√n (clipped to [0, 1]); with one seed, the Wilson interval of its episodes."""
    pooled_ci95: tuple[float, float]
    """Wilson interval of all held-out episodes of all seeds pooled."""
    per_seed: list[float]
    mean_reward: float
    episodes: int
    rl_real_transitions: float
    """Real transitions taken during RL (mean over seeds); the offline data is shared by every arm."""


def summarise(
    reports: Mapping[str, Sequence[EvalReport]], rl_real: Mapping[str, Sequence[int]]
) -> list[ArmSummary]:
    """One :class:`ArmSummary` per arm that has reports, in display order."""
    rows: list[ArmSummary] = []
    for arm in ARMS:
        runs = reports.get(arm, ())
        if not runs:
            continue
        rates = [r.success_rate for r in runs]
        successes, episodes = sum(r.successes for r in runs), sum(r.episodes for r in runs)
        mean = statistics.fmean(rates)
        if len(runs) > 1:
            half = t95(len(runs) - 1) * statistics.stdev(rates) / math.sqrt(len(runs))
            ci = (max(0.0, mean - half), min(1.0, mean + half))
        else:
            ci = runs[0].ci95
        real = rl_real.get(arm, [0] * len(runs))
        rows.append(
            ArmSummary(
                arm=arm,
                label=_LABELS[arm],
                seeds=len(runs),
                success_rate=mean,
                ci95=ci,
                pooled_ci95=wilson_interval(successes, episodes),
                per_seed=rates,
                mean_reward=statistics.fmean(r.mean_reward for r in runs),
                episodes=episodes,
                rl_real_transitions=statistics.fmean(real) if real else 0.0,
            )
        )
    return rows


def compare(reports: Mapping[str, Sequence[EvalReport]]) -> dict[str, PairedDifference]:
    """``"A − B"`` → the paired difference of every comparison in :data:`COMPARISONS` (same games, every
    seed pooled)."""
    return {
        f"{a} − {b}": paired_difference(reports[a], reports[b])
        for a, b in COMPARISONS
        if reports.get(a) and reports.get(b)
    }


def differences_table(differences: Mapping[str, PairedDifference], mode: str) -> Table:
    """The table of the paired differences (from :func:`compare`) of ``mode`` policies, in points."""
    table = Table(title=f"Paired differences, {mode} policies (same held-out games; bootstrap 95% interval)")
    table.add_column("comparison")
    table.add_column("difference", justify="right")
    table.add_column("95% interval", justify="right", no_wrap=True)
    table.add_column("games", justify="right")
    for name, d in differences.items():
        a, _, b = name.partition(" − ")
        table.add_row(
            f"{_LABELS[a]} − {_LABELS[b]}",
            f"{d.difference * 100:+.1f} pts",
            f"{d.ci95[0] * 100:+.1f} – {d.ci95[1] * 100:+.1f}",
            str(d.tasks),
        )
    return table


def results_table(
    rows: Sequence[ArmSummary],
    offline_transitions: int,
    mode: str = "greedy",
    exploration_transitions: int = 0,
) -> Table:
    """The table of every arm's held-out success rate with ``mode`` policies, captioned with the data
    the arms started from."""
    table = Table(title=f"Held-out real TextWorld games, {mode} policies: success rate (95% interval)")
    table.add_column("policy")
    table.add_column("success", justify="right")
    table.add_column("95% interval", justify="right", no_wrap=True)
    table.add_column("per seed", justify="right")
    table.add_column("mean score", justify="right")
    table.add_column("real steps in RL", justify="right")
    for row in rows:
        table.add_row(
            row.label,
            f"{row.success_rate:.1%}",
            f"{row.ci95[0]:.1%} – {row.ci95[1]:.1%}",
            " ".join(f"{r:.0%}" for r in row.per_seed),
            f"{row.mean_reward:.2f}",
            f"{row.rl_real_transitions:,.0f}",
        )
    table.caption = (
        f"Every policy but random starts from the same {offline_transitions:,} offline real transitions."
    )
    if exploration_transitions:
        table.caption += (
            f" The experience model also learns from {exploration_transitions:,} of exploration (random play,"
            " and each training game's solution branched at every step)."
        )
    return table


def plot_results(
    rows: Mapping[str, Sequence[ArmSummary]],
    curves: Mapping[str, Sequence[Sequence[dict[str, Any]]]],
    path: Path,
) -> Path:
    """Bars of held-out success per evaluation mode with intervals, and the training success of the RL arms
    per iteration."""
    require("matplotlib", extra="plot", feature="the demo's plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (bars, lines) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    colors = {"random": "#9e9e9e", "sft": "#8d6e63", "real-rl": "#1e88e5", "dreamgym": "#8e24aa",
              "dreamgym-s2r": "#43a047"}  # fmt: skip
    width = 0.8 / max(1, len(rows))
    first: Sequence[ArmSummary] = next(iter(rows.values())) if rows else []
    for m, (mode, mode_rows) in enumerate(rows.items()):
        xs = [i + (m - (len(rows) - 1) / 2) * width for i in range(len(mode_rows))]
        errors = [
            [r.success_rate - r.ci95[0] for r in mode_rows],
            [r.ci95[1] - r.success_rate for r in mode_rows],
        ]
        bars.bar(xs, [r.success_rate for r in mode_rows], width=width, yerr=errors, capsize=3,
                 color=[colors[r.arm] for r in mode_rows], alpha=1.0 if m == 0 else 0.5,
                 hatch=None if m == 0 else "//", edgecolor="white", label=mode)  # fmt: skip
    labels = [f"{r.label}\n{r.rl_real_transitions:,.0f} real steps" for r in first]
    bars.set_xticks(list(range(len(first))), labels, fontsize=8)
    bars.set_ylim(0, 1.05)
    bars.set_ylabel("success rate on held-out real games")
    bars.set_title(f"Held-out games (mean over {first[0].seeds if first else 0} seed(s), 95% interval)")
    bars.legend(fontsize=8, loc="upper left")
    for arm, runs in curves.items():
        for i, metrics in enumerate(runs):
            # sim-to-real continues where DreamGym stopped
            offset = (
                len(curves.get("dreamgym", [])[i]) if arm == "dreamgym-s2r" and "dreamgym" in curves else 0
            )
            if metrics:
                lines.plot(
                    [offset + m["iteration"] for m in metrics],
                    [m["success_rate"] for m in metrics],
                    color=colors[arm],
                    marker="o",
                    markersize=3,
                    alpha=0.8,
                    label=_LABELS[arm] if i == 0 else None,
                )
    lines.set_xlabel("iteration")
    lines.xaxis.set_major_locator(MaxNLocator(integer=True))
    lines.set_ylabel("training success (the env it trains in)")
    lines.set_ylim(0, 1)
    lines.set_title("Training")
    lines.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)  # pyright: ignore[reportUnknownMemberType]
    plt.close(fig)
    return path
