"""``dreamgym replay``: fill, inspect and search the LanceDB replay buffer.

``dreamgym replay import trajectories.jsonl --uri runs/a/replay`` validates the whole file, then imports it
with a progress bar; ``stats`` shows counts by source, environment and reward; ``search`` shows the top-k
neighbours of a (state, action); ``export`` writes JSONL or Parquet. Every option maps to a field of
:class:`~dreamgym_sdk.replay.ReplayConfig` (``--config`` reads them from a TOML or JSON file).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dreamgym_sdk.cli._options import command_group, interrupt_says, run_async
from dreamgym_sdk.config_files import load_config
from dreamgym_sdk.errors import ConfigError, DreamGymError
from dreamgym_sdk.replay.base import Embedder, ReplayStats
from dreamgym_sdk.replay.config import ReplayConfig
from dreamgym_sdk.types import Source

__all__ = ["app"]

app = command_group("replay", help="Fill, inspect and search the experience replay buffer (LanceDB).")

T = TypeVar("T")
EXPORT_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
IMPORT_SUFFIXES = (*EXPORT_SUFFIXES, ".ndjson", ".json")


class SourceChoice(StrEnum):
    """A source filter."""

    ALL = "all"
    REAL = "real"
    SYNTHETIC = "synthetic"

    def to_source(self) -> Source | None:
        return None if self is SourceChoice.ALL else Source(self.value)


UriOption = Annotated[
    str | None, typer.Option("--uri", help="Local directory or LanceDB URI of the buffer [config: uri].")
]
TableOption = Annotated[str | None, typer.Option("--table", help="Table name [config: table].")]
EmbedderOption = Annotated[
    str | None,
    typer.Option(
        "--embedder",
        help="Embedder spec: minilm, hf:<path>, hashing, litellm:<model> [config: embedder]. "
        "Default: the one the table was built with, else minilm.",
    ),
]
EmbedderDimOption = Annotated[
    int | None,
    typer.Option("--embedder-dim", help="Vector length (hashing, litellm) [config: embedder_dim]."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML or JSON file of ReplayConfig fields (a [replay] table is used if present)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]


def _config(config: Path | None, **flags: Any) -> ReplayConfig:
    try:
        return load_config(ReplayConfig, config, flags, section="replay", what="replay configuration")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


async def _embedder(config: ReplayConfig, explicit: bool) -> Embedder:
    """The configured embedder, or (unless one was asked for) the one the table was built with."""
    from dreamgym_sdk.embeddings import embedder_for_name, make_embedder
    from dreamgym_sdk.replay.lance import stored_embedder

    if not explicit:
        stored = await stored_embedder(config)
        if stored is not None:
            return embedder_for_name(*stored)
    return make_embedder(config.embedder, dim=config.embedder_dim)


def _run(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return run_async(fn)
    except (DreamGymError, OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="A .jsonl, .jsonl.gz or .parquet file.", exists=True, dir_okay=False)
    ],
    uri: UriOption = None,
    table: TableOption = None,
    embedder: EmbedderOption = None,
    embedder_dim: EmbedderDimOption = None,
    config: ConfigOption = None,
    source: Annotated[
        SourceChoice, typer.Option(help="Source of records that do not say (offline data is real).")
    ] = SourceChoice.REAL,
    environment: Annotated[str | None, typer.Option(help="Environment of records that do not say.")] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Transitions per write (and per progress step).")
    ] = 2000,
    json_output: JsonOption = False,
) -> None:
    """Import offline trajectories (one transition or one episode per line; see the seeding guide).

    The whole file is validated first: a bad record is reported by line and field, and nothing is written.
    """
    from dreamgym_sdk.replay.io import import_file
    from dreamgym_sdk.replay.lance import LanceDBReplayBuffer

    if not path.name.lower().endswith(IMPORT_SUFFIXES):  # before the buffer is opened (and created)
        raise typer.BadParameter(
            f"{path.name!r}: cannot tell its format; name it .jsonl, .jsonl.gz or .parquet", param_hint="PATH"
        )
    cfg = _config(config, uri=uri, table=table, embedder=embedder, embedder_dim=embedder_dim)
    default_source = source.to_source() or Source.REAL
    err = Console(stderr=True)

    written = [0]

    async def main() -> Any:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=json_output,
        ) as progress:  # fmt: skip
            task = progress.add_task(f"validating {path.name}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, description=f"importing {path.name}", completed=done, total=total)
                written[0] = done

            buffer = LanceDBReplayBuffer(cfg, embedder=await _embedder(cfg, embedder is not None))
            async with buffer:
                return await import_file(
                    buffer, path, source=default_source, environment=environment, batch_size=batch_size,
                    progress=advance,
                )  # fmt: skip

    with interrupt_says(
        lambda: (
            f"the file's first {written[0]} transitions are in {cfg.uri}: "
            "importing it again adds only the rest"
        )
    ):
        report = _run(main)
    summary = {"records": report.records, "transitions": report.transitions, "added": report.added}
    if json_output:
        typer.echo(json.dumps(summary))
    else:
        err.print(
            f"{report.records} records, {report.transitions} transitions read; "
            f"{report.added} added to {cfg.uri} ({report.transitions - report.added} already there)"
        )


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="Output file: .jsonl, .jsonl.gz or .parquet.", dir_okay=False)],
    uri: UriOption = None,
    table: TableOption = None,
    config: ConfigOption = None,
    source: Annotated[SourceChoice, typer.Option(help="Which transitions to export.")] = SourceChoice.ALL,
    environment: Annotated[str | None, typer.Option(help="Only this environment.")] = None,
    vectors: Annotated[
        bool, typer.Option("--vectors", help="Parquet only: include the vectors (re-import skips embedding).")
    ] = False,
) -> None:
    """Export transitions as JSONL (the import format) or Parquet."""
    from dreamgym_sdk.replay.io import export_jsonl, export_parquet
    from dreamgym_sdk.replay.lance import LanceDBReplayBuffer

    if not path.name.endswith(EXPORT_SUFFIXES):
        raise typer.BadParameter(
            f"{path.name!r}: name the file .jsonl, .jsonl.gz or .parquet (the format it is written in)",
            param_hint="PATH",
        )
    cfg = _config(config, uri=uri, table=table, read_only=True)

    async def main() -> int:
        async with LanceDBReplayBuffer(cfg, embedder=await _embedder(cfg, False)) as buffer:
            if path.suffix == ".parquet":
                return await export_parquet(
                    buffer, path, source=source.to_source(), environment=environment, vectors=vectors
                )
            return await export_jsonl(buffer, path, source=source.to_source(), environment=environment)

    written = _run(main)
    Console(stderr=True).print(f"{written} transitions written to {path}")


def _stats_tables(stats: ReplayStats) -> list[Table]:
    tables: list[Table] = []
    for title, counts in (
        ("by source", stats.by_source),
        ("by environment", stats.by_environment),
        ("by reward", stats.by_reward),
    ):
        table = Table(title=title, title_justify="left")
        table.add_column(title.removeprefix("by "))
        table.add_column("transitions", justify="right")
        table.add_column("share", justify="right")
        for key, n in counts.items():
            table.add_row(str(key), str(n), f"{n / stats.total:.1%}" if stats.total else "-")
        tables.append(table)
    return tables


@app.command()
def stats(
    uri: UriOption = None,
    table: TableOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Counts by source, environment and reward."""
    from dreamgym_sdk.replay.lance import LanceDBReplayBuffer

    cfg = _config(config, uri=uri, table=table, read_only=True)

    async def main() -> tuple[ReplayStats, dict[str, Any]]:
        async with LanceDBReplayBuffer(cfg, embedder=await _embedder(cfg, False)) as buffer:
            info = {
                "uri": cfg.uri,
                "table": cfg.table,
                "embedder": buffer.embedder.name,
                "version": await buffer.version(),
                "vector_index": buffer.vector_indexed,
            }
            return await buffer.stats(), info

    result, info = _run(main)
    if json_output:
        payload = {
            **info, "total": result.total, "successes": result.successes, "by_source": dict(result.by_source),
            "by_environment": dict(result.by_environment), "by_reward": dict(result.by_reward),
        }  # fmt: skip
        typer.echo(json.dumps(payload))
        return
    console = Console()
    console.print(
        f"[bold]{result.total}[/bold] transitions ({result.successes} successful) in {info['uri']} "
        f"[dim](table {info['table']}, version {info['version']}, embedder {info['embedder']}, "
        f"{'ANN index' if info['vector_index'] else 'exact search'})[/dim]"
    )
    for rich_table in _stats_tables(result):
        console.print(rich_table)


@app.command()
def search(
    state: Annotated[str, typer.Argument(help="The state text.")],
    action: Annotated[str, typer.Argument(help="The action text.")] = "",
    k: Annotated[int, typer.Option("--top-k", min=1, help="How many neighbours.")] = 4,
    source: Annotated[SourceChoice, typer.Option(help="Which transitions to search.")] = SourceChoice.REAL,
    environment: Annotated[str | None, typer.Option(help="Only this environment.")] = None,
    task_id: Annotated[str | None, typer.Option("--task-id", help="Only this task.")] = None,
    uri: UriOption = None,
    table: TableOption = None,
    embedder: EmbedderOption = None,
    embedder_dim: EmbedderDimOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """The k stored transitions most similar to (STATE, ACTION), as the experience model would see them."""
    from dreamgym_sdk.replay.lance import LanceDBReplayBuffer

    cfg = _config(config, uri=uri, table=table, embedder=embedder, embedder_dim=embedder_dim, read_only=True)

    async def main() -> list[Any]:
        async with LanceDBReplayBuffer(cfg, embedder=await _embedder(cfg, embedder is not None)) as buffer:
            return await buffer.search(
                state, action, k=k, environment=environment, task_id=task_id, source=source.to_source()
            )

    hits = _run(main)
    if json_output:
        typer.echo(json.dumps([{"score": h.score, **h.transition.model_dump(mode="json")} for h in hits]))
        return
    out = Table(title=f"top {k} for action {action!r}", title_justify="left")
    for column in ("score", "id", "source", "environment", "state", "action", "next state", "reward"):
        out.add_column(column, overflow="fold", max_width=40 if column in ("state", "next state") else None)
    for h in hits:
        t = h.transition
        out.add_row(
            f"{h.score:.3f}",
            t.id,
            t.source.value,
            t.environment,
            t.state,
            t.action,
            t.next_state,
            f"{t.reward:g}",
        )
    Console().print(out)
