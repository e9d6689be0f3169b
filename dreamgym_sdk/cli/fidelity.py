"""``dreamgym eval-fidelity``: how faithfully an experience model predicts held-out real transitions.

```
dreamgym eval-fidelity --model hf:my-experience-model --games-from unseen_games --variants all
dreamgym eval-fidelity --model openai/gpt-4o-mini --transitions heldout.jsonl --replay train.jsonl
```

References come from a directory of TextWorld games (played with a policy mix of expert, noisy, random
and invalid actions, then replayed for their ground truth) or from a JSONL file of real transitions
(admissibility from its annotations sidecar, tasks from ``--tasks`` or ``--games-from``). Any model
string works; a model written by ``dreamgym distill train`` is asked with the prompt settings of its card
and grounded by its own training transitions. The metrics are printed as JSON on stdout and as a table on
stderr.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dreamgym_sdk.cli._options import command_group, run_async

if TYPE_CHECKING:
    from dreamgym_sdk.distill import FidelityRun, Reference, Variant
    from dreamgym_sdk.experience.base import ExperienceModel
    from dreamgym_sdk.types import Task

__all__ = ["app", "fidelity_table", "parse_variants"]

app = command_group(
    "eval-fidelity",
    help="Measure an experience model's fidelity on held-out real transitions.",
    no_args_is_help=False,
)


def parse_variants(text: str) -> list[Variant]:
    """``"all"`` or a comma-separated list of ``full``, ``no-history``, ``no-retrieval``, ``no-reasoning``.

    Raises:
        typer.BadParameter: an unknown variant.
    """
    from dreamgym_sdk.distill import VARIANTS

    if text.strip() == "all":
        return list(VARIANTS)
    chosen: list[Variant] = []
    for name in filter(None, (p.strip() for p in text.split(","))):
        known: dict[str, Variant] = {v: v for v in VARIANTS}
        if name not in known:
            raise typer.BadParameter(f"unknown variant {name!r}; choose from all, {', '.join(VARIANTS)}")
        chosen.append(known[name])
    if not chosen:
        raise typer.BadParameter("name at least one variant")
    return chosen


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def fidelity_table(run: FidelityRun) -> Table:
    """The metrics of every variant as a table (one column per variant)."""
    table = Table(title=f"Fidelity of {run.model} on {run.references} transitions ({run.tasks} tasks)")
    table.add_column("metric")
    for result in run.results:
        table.add_column(result.variant, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("answered", [f"{r.metrics.answered}/{r.metrics.n}" for r in run.results]),
        ("reward accuracy", [_pct(r.metrics.reward_accuracy) for r in run.results]),
        ("done accuracy", [_pct(r.metrics.done_accuracy) for r in run.results]),
        ("success accuracy", [_pct(r.metrics.success_accuracy) for r in run.results]),
        ("next-state exact", [_pct(r.metrics.next_state_exact) for r in run.results]),
        ("next-state token F1", [f"{r.metrics.next_state_f1:.3f}" for r in run.results]),
        ("reward>0 recall", [_pct(r.metrics.positives.reward_recall) for r in run.results]),
        ("success recall", [_pct(r.metrics.positives.success_recall) for r in run.results]),
        ("invalid: reward 0", [_pct(r.metrics.invalid_actions.reward_zero) for r in run.results]),
        ("invalid: state kept", [_pct(r.metrics.invalid_actions.state_kept) for r in run.results]),
        ("seconds", [f"{r.seconds:.0f}" for r in run.results]),
    ]
    if any(r.judge is not None for r in run.results):
        rows.append(
            (
                "judge overall (0-2)",
                [
                    "-" if r.judge is None or r.judge.overall is None else f"{r.judge.overall:.2f}"
                    for r in run.results
                ],
            )
        )
    for name, cells in rows:
        table.add_row(name, *cells)
    invalid = run.results[0].metrics.invalid_actions.count if run.results else 0
    table.caption = (
        f"reward mode {run.reward_mode} · {invalid} non-admissible actions · "
        f"{run.overlapping_tasks} task(s) shared with the model's replay data"
    )
    return table


async def _references(
    transitions: Path | None,
    games_from: Path | None,
    tasks_file: Path | None,
    *,
    episodes_per_game: int,
    max_steps: int,
    max_games: int | None,
    mix: Any,
    seed: int,
    progress: Progress,
) -> tuple[list[Reference], dict[str, Task]]:
    from dreamgym_sdk.collect import read_jsonl
    from dreamgym_sdk.distill import Reference, annotations_path, read_annotations, read_tasks
    from dreamgym_sdk.integrations.textworld import (
        collect_textworld,
        load_games,
        replay_ground_truth,
        textworld_tasks,
    )

    games: list[Any] = []
    if games_from is not None:
        games = list(await anyio.to_thread.run_sync(load_games, games_from))
        games = games[:max_games] if max_games else games
        if not games:
            raise typer.BadParameter(f"no TextWorld games (.z8 + .json) in {games_from}")
    tasks: dict[str, Task] = textworld_tasks(games)
    if tasks_file is not None:
        tasks.update(read_tasks(tasks_file))
    if transitions is not None:
        items = read_jsonl(transitions)
        known = read_annotations(annotations_path(transitions))
        admissible = {tid: a.action_admissible for tid, a in known.items()}
    else:
        playing = progress.add_task("playing", total=len(games) * episodes_per_game)
        items = await collect_textworld(
            games, mix=mix, episodes_per_game=episodes_per_game, max_steps=max_steps, seed=seed,
            on_episode=lambda _: progress.advance(playing),
        )  # fmt: skip
        admissible = {}
    if games and any(admissible.get(t.id) is None for t in items):
        report = await replay_ground_truth(items, games)
        admissible.update({tid: s.action_admissible for tid, s in report.steps.items()})
    return [Reference(t, admissible.get(t.id)) for t in items], tasks


@app.callback(invoke_without_command=True)
def eval_fidelity(
    model: Annotated[str, typer.Option("--model", "-m", help="Experience model string, e.g. hf:<dir>.")],
    games_from: Annotated[
        Path | None,
        typer.Option(
            "--games-from", exists=True, file_okay=False, help="Directory of unseen TextWorld games."
        ),
    ] = None,
    transitions: Annotated[
        Path | None,
        typer.Option(
            "--transitions", exists=True, dir_okay=False, help="JSONL of held-out real transitions."
        ),
    ] = None,
    tasks: Annotated[
        Path | None, typer.Option("--tasks", exists=True, dir_okay=False, help="Tasks of the transitions.")
    ] = None,
    variants: Annotated[
        str, typer.Option("--variants", help="all, or e.g. full,no-retrieval (the ablations).")
    ] = "full",
    replay: Annotated[
        Path | None,
        typer.Option(
            "--replay", exists=True, dir_okay=False, help="Retrieval data (default: the model's own)."
        ),
    ] = None,
    embedder: Annotated[str, typer.Option("--embedder", help="Embedder of --replay.")] = "minilm",
    k: Annotated[int, typer.Option("--k", min=0, help="Retrieved examples (models without a card).")] = 4,
    history_window: Annotated[
        int, typer.Option("--history-window", min=0, help="History steps (models without a card).")
    ] = 8,
    reward_mode: Annotated[
        str | None, typer.Option("--reward-mode", help="dense or outcome (default: the card's, else dense).")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")
    ] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=16, help="Answer budget per step.")] = 512,
    max_retries: Annotated[
        int, typer.Option("--max-retries", min=0, help="Re-asks of unusable answers.")
    ] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Predictions at once.")] = 32,
    episodes_per_game: Annotated[int, typer.Option("--episodes-per-game", "-k", min=1)] = 2,
    max_steps: Annotated[int, typer.Option("--max-steps", min=1, help="Step limit when playing games.")] = 20,
    max_games: Annotated[
        int | None, typer.Option("--max-games", min=1, help="Play at most this many.")
    ] = None,
    invalid_rate: Annotated[
        float, typer.Option("--invalid-rate", min=0.0, max=1.0, help="Share of invalid actions played.")
    ] = 0.1,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Also score a sample with this LLM judge.")
    ] = None,
    judge_api_base: Annotated[str | None, typer.Option("--judge-api-base")] = None,
    judge_sample: Annotated[int, typer.Option("--judge-sample", min=1)] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episodes and the requests.")] = 0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the JSON here.")] = None,
    predictions: Annotated[
        bool, typer.Option("--predictions/--no-predictions", help="Include every prediction in the JSON.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Replay held-out real transitions through MODEL and report reward, done and success accuracy,
    next-state exact match and token F1, invalid-action handling and, optionally, a judge's scores."""
    from dreamgym_sdk.distill import FidelityConfig, evaluate_fidelity, read_card, read_replay
    from dreamgym_sdk.experience import FidelityJudge, ReasoningConfig, ReasoningExperienceModel
    from dreamgym_sdk.integrations.textworld import PolicyMix
    from dreamgym_sdk.providers import ProviderConfig, get_provider
    from dreamgym_sdk.types import Transition

    if games_from is None and transitions is None:
        raise typer.BadParameter("give --games-from DIR or --transitions FILE")
    chosen = parse_variants(variants)
    model_dir = Path(model.removeprefix("hf:")) if model.startswith("hf:") else None
    card = read_card(model_dir) if model_dir is not None and model_dir.is_dir() else None
    mode = reward_mode or (card.dataset.reward_mode if card is not None else "dense")
    if mode not in ("dense", "outcome"):
        raise typer.BadParameter(f"--reward-mode must be dense or outcome, got {mode!r}")
    options: dict[str, Any] = {"request_timeout": None}
    if api_base:
        options["api_base"] = api_base
    if model.startswith("hf:"):
        options["backend_options"] = {"max_batch_size": concurrency}
    provider_config = ProviderConfig.model_validate(options)
    err = Console(stderr=True)

    replay_data: list[Transition] = []
    if replay is not None:
        from dreamgym_sdk.collect import read_jsonl

        replay_data = read_jsonl(replay)
    elif card is not None and model_dir is not None:
        replay_data = read_replay(model_dir)

    def reasoning_config(variant: Variant) -> ReasoningConfig:
        base: dict[str, Any] = {"max_tokens": max_tokens, "max_retries": max_retries}
        if card is not None:
            return card.dataset.reasoning_config(variant, **base).model_copy(update={"reward_mode": mode})
        return ReasoningConfig(
            k=k, history_window=history_window, reward_mode=mode,
            use_history=variant != "no-history", use_retrieval=variant != "no-retrieval",
            use_reasoning=variant != "no-reasoning", **base,
        )  # fmt: skip

    @contextlib.asynccontextmanager
    async def open_model(variant: Variant) -> AsyncGenerator[ExperienceModel]:
        from dreamgym_sdk.embeddings import make_embedder
        from dreamgym_sdk.replay import InMemoryReplayBuffer

        config = reasoning_config(variant)
        provider = get_provider(model, provider_config)
        try:
            if not config.use_retrieval or not replay_data:
                yield ReasoningExperienceModel(provider, config=config)
                return
            spec = card.dataset.embedder if card is not None and replay is None else embedder
            async with InMemoryReplayBuffer(embedder=make_embedder(spec)) as buffer:
                await buffer.add(replay_data)
                yield ReasoningExperienceModel(provider, retriever=buffer, config=config)
        finally:
            await provider.aclose()

    async def run() -> FidelityRun:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, disable=not progress,
        ) as bars:  # fmt: skip
            references, task_map = await _references(
                transitions, games_from, tasks, episodes_per_game=episodes_per_game, max_steps=max_steps,
                max_games=max_games, mix=PolicyMix(invalid_rate=invalid_rate), seed=seed, progress=bars,
            )  # fmt: skip
            if not references:
                raise typer.BadParameter("no reference transitions")
            bar = {v: bars.add_task(v, total=len(references)) for v in chosen}
            judge_provider = None
            the_judge = None
            if judge is not None:
                judge_provider = (
                    get_provider(judge, api_base=judge_api_base) if judge_api_base else get_provider(judge)
                )
                the_judge = FidelityJudge(judge_provider)
            try:
                return await evaluate_fidelity(
                    references, open_model, model_name=model, tasks=task_map,
                    config=FidelityConfig(
                        variants=tuple(chosen), reward_mode=mode, concurrency=concurrency, seed=seed,
                        judge_sample=judge_sample, keep_predictions=predictions,
                    ),
                    judge=the_judge, replay_tasks={t.task_id for t in replay_data},
                    on_prediction=lambda v: bars.advance(bar[v]),
                )  # fmt: skip
            finally:
                if judge_provider is not None:
                    await judge_provider.aclose()

    result = run_async(run)
    text = json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    typer.echo(text)
    err.print(fidelity_table(result))
