"""``dreamgym judge``: score the fidelity of stored transitions with an LLM judge.

``dreamgym judge fidelity transitions.jsonl --model openai/gpt-4o-mini -n 50`` reads one ``Transition``
JSON object per line, samples ``n`` of them, judges them and prints the report as JSON on stdout and as a
table on stderr.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from dreamgym_sdk.cli._options import command_group, run_async
from dreamgym_sdk.errors import RecordValidationError
from dreamgym_sdk.types import Transition

if TYPE_CHECKING:
    from dreamgym_sdk.experience.judge import FidelityReport
    from dreamgym_sdk.providers.base import Provider

__all__ = ["app"]

app = command_group("judge", help="Judge the fidelity of synthetic transitions with an LLM.")


@app.callback()
def main() -> None:
    """Judge the fidelity of synthetic transitions with an LLM."""


def read_transitions(path: Path) -> list[Transition]:
    """Every transition in a JSONL file (:func:`~dreamgym_sdk.collect.read_jsonl`).

    Raises:
        typer.BadParameter: a line is not a valid ``Transition``; the message names the line.
    """
    from dreamgym_sdk.collect import read_jsonl

    try:
        return read_jsonl(path)
    except RecordValidationError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _resolve_provider(model: str, api_base: str | None) -> Provider:
    """The provider for ``model`` from the provider registry (imported here to keep the CLI light)."""
    from dreamgym_sdk.providers import get_provider

    return get_provider(model, api_base=api_base) if api_base else get_provider(model)


class RubricChoice(StrEnum):
    DREAMGYM = "dreamgym"
    AGENTWORLD = "agentworld"


def _table(report: FidelityReport) -> Table:
    table = Table(title=f"Fidelity of {report.judged} transition(s), judged by {report.model}")
    table.add_column("criterion")
    table.add_column("mean (0-2)", justify="right")
    for score in ("0", "1", "2"):
        table.add_column(f"#{score}", justify="right")
    for criterion, counts in report.counts.items():
        mean = report.means.get(criterion)
        table.add_row(
            criterion, "-" if mean is None else f"{mean:.2f}", *(str(counts[s]) for s in ("0", "1", "2"))
        )
    overall = "-" if report.overall is None else f"{report.overall:.2f}"
    table.caption = f"overall {overall} · failed {report.failed}"
    return table


@app.command("fidelity")
def fidelity(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL file, one Transition per line.")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="The judge's model string, e.g. openai/gpt-4o-mini.")
    ],
    n: Annotated[int, typer.Option("--samples", min=1, help="How many transitions to sample.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Transitions judged at once.")] = 8,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the JSON report here.")
    ] = None,
    table: Annotated[
        bool, typer.Option("--table/--no-table", help="Print a summary table on stderr.")
    ] = True,
    rubric: Annotated[
        RubricChoice,
        typer.Option(
            help="dreamgym: the paper's four criteria; agentworld: Qwen-AgentWorld's five dimensions."
        ),
    ] = RubricChoice.DREAMGYM,
) -> None:
    """Sample N transitions from a JSONL file and score them 0/1/2 on the DreamGym paper's criteria (causal
    consistency, diversity, informativeness, hallucination) or Qwen-AgentWorld's (format, factuality,
    consistency, realism, quality)."""
    from dreamgym_sdk.experience.judge import FidelityJudge, JudgeConfig, sample_transitions

    transitions = read_transitions(path)
    if not transitions:
        raise typer.BadParameter(f"{path} holds no transitions")
    sample = sample_transitions(transitions, n, seed=seed)

    async def run() -> FidelityReport:
        provider = _resolve_provider(model, api_base)
        try:
            judge = FidelityJudge(provider, config=JudgeConfig(concurrency=concurrency, rubric=rubric.value))
            return await judge.evaluate(sample, context=transitions)
        finally:
            await provider.aclose()

    report = run_async(run)
    text = json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
    if table:
        Console(stderr=True).print(_table(report))
