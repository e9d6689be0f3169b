"""``dreamgym serve``: run the HTTP + WebSocket environment server.

``dreamgym serve --config serve.toml`` or flags; every flag is the :class:`~dreamgym_sdk.serve.ServeConfig`
field of the same name (flags override the file). Tokens come from ``--token``, ``--tokens-file`` or the
``DREAMGYM_SERVE_TOKENS`` environment variable. SIGINT/SIGTERM shut down gracefully (in-flight steps
finish and are answered); a second signal exits at once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.abc
import typer

from dreamgym_sdk.cli._options import FileFormat, FormatOption, PrintConfigOption, command_group
from dreamgym_sdk.cli._options import print_config as show_config
from dreamgym_sdk.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from dreamgym_sdk.bus import EventBus
    from dreamgym_sdk.env import Env
    from dreamgym_sdk.serve.config import ServeConfig
    from dreamgym_sdk.serve.server import EnvServer

__all__ = ["app"]

app = command_group(
    "serve", help="Serve a DreamGym environment over HTTP and WebSocket.", no_args_is_help=False
)


@app.callback(invoke_without_command=True)
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", dir_okay=False, help="TOML or YAML file of settings.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default 8000; 0 picks a free one).")] = None,
    token: Annotated[
        list[str] | None,
        typer.Option("--token", help="Accepted bearer token (repeatable; prefer --tokens-file or the env)."),
    ] = None,
    tokens_file: Annotated[
        Path | None, typer.Option(dir_okay=False, help="File of bearer tokens, one per line.")
    ] = None,
    allow_unauthenticated: Annotated[
        bool | None, typer.Option("--allow-unauthenticated", help="No authentication (local experiments).")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Experience model string, or testing:echo (default, offline).")
    ] = None,
    api_base: Annotated[str | None, typer.Option(help="Base URL of an OpenAI-compatible server.")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Provider API key (prefer the provider's environment variable).")
    ] = None,
    replay: Annotated[
        str | None,
        typer.Option(
            help="LanceDB buffer of real transitions the experience model retrieves from [replay.uri]."
        ),
    ] = None,
    admit: Annotated[
        bool,
        typer.Option(
            "--admit", help="Store completed episodes in the --replay buffer (default policy) [admission]."
        ),
    ] = False,
    games: Annotated[
        Path | None,
        typer.Option(
            exists=True, file_okay=False, help="Serve these real TextWorld games instead of a model."
        ),
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Step limit of an episode (default 30).")] = None,
    environment: Annotated[str | None, typer.Option(help="Environment name of string tasks.")] = None,
    max_sessions: Annotated[int | None, typer.Option(help="Open sessions allowed in total.")] = None,
    max_sessions_per_token: Annotated[
        int | None, typer.Option(help="Open sessions allowed per token.")
    ] = None,
    max_request_bytes: Annotated[int | None, typer.Option(help="Largest request body or message.")] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="Requests per second per token (off by default).")
    ] = None,
    rate_burst: Annotated[int | None, typer.Option(help="Requests a token may make at once.")] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Seconds before an idle session is closed.")
    ] = None,
    shutdown_grace: Annotated[
        float | None, typer.Option(help="Seconds in-flight requests get at shutdown.")
    ] = None,
    ws_ping_interval: Annotated[float | None, typer.Option(help="Seconds between WebSocket pings.")] = None,
    access_log: Annotated[
        bool | None, typer.Option("--access-log/--no-access-log", help="Log requests.")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    print_config: PrintConfigOption = False,
    format_: FormatOption = FileFormat.TOML,
) -> None:
    """Serve many concurrent, isolated DreamEnv sessions over one shared experience model."""
    from dreamgym_sdk.serve.config import load_config

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "tokens": tuple(token) if token else None,
        "tokens_file": tokens_file,
        "allow_unauthenticated": allow_unauthenticated,
        "model": model,
        "api_base": api_base,
        "api_key": api_key,
        "replay.uri": replay,
        "admission": {} if admit else None,
        "games": games,
        "max_steps": max_steps,
        "environment": environment,
        "max_sessions": max_sessions,
        "max_sessions_per_token": max_sessions_per_token,
        "max_request_bytes": max_request_bytes,
        "rate_limit": rate_limit,
        "rate_burst": rate_burst,
        "idle_timeout": idle_timeout,
        "shutdown_grace": shutdown_grace,
        "ws_ping_interval": ws_ping_interval,
        "access_log": access_log,
        "log_level": log_level,
    }
    try:
        settings = load_config(config, **overrides)
        if print_config:
            show_config(settings, format_)
            return
        anyio.run(_serve, settings)
    except (ConfigError, MissingExtraError) as exc:
        typer.echo(f"dreamgym serve: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"dreamgym serve: cannot listen: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


async def _serve(settings: ServeConfig) -> None:
    from dreamgym_sdk.logging import configure_logging
    from dreamgym_sdk.serve.admission import admitting_episodes
    from dreamgym_sdk.serve.models import open_experience_model
    from dreamgym_sdk.serve.server import EnvServer

    configure_logging(settings.log_level.upper())
    async with admitting_episodes(settings) as bus:
        if settings.games is not None:
            await _run(_game_server(settings, bus))
            return
        async with open_experience_model(settings) as model:
            await _run(EnvServer.for_model(model, settings, bus=bus))


def _game_server(settings: ServeConfig, bus: EventBus | None) -> EnvServer:
    """A server of the real TextWorld games in ``settings.games``; with a ``bus``, their episodes are
    recorded and published on it."""
    from dreamgym_sdk.env import RecordingEnv
    from dreamgym_sdk.integrations.textworld import GameCatalogEnv, load_games
    from dreamgym_sdk.serve.server import EnvServer

    assert settings.games is not None
    games = load_games(settings.games)
    if not games:
        raise ConfigError(f"no TextWorld games (*.z8 with .json) in {settings.games}")

    def make() -> Env:
        env = GameCatalogEnv(games, max_steps=settings.max_steps)
        return env if bus is None else RecordingEnv(env, bus=bus)

    return EnvServer(make, settings)


async def _run(server: EnvServer) -> None:
    async with server, anyio.create_task_group() as tg:
        typer.echo(f"dreamgym serve: listening on {server.url} (WebSocket {server.ws_url})", err=True)
        tg.start_soon(_stop_on_signal, server, tg)
        await server.wait_closed()
        tg.cancel_scope.cancel()


async def _stop_on_signal(server: EnvServer, tg: anyio.abc.TaskGroup) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        stopping = False
        async for _ in signals:
            if stopping:
                typer.echo("dreamgym serve: forced exit", err=True)
                os._exit(130)
            stopping = True
            typer.echo("dreamgym serve: shutting down (signal again to force)", err=True)
            tg.start_soon(server.shutdown)


if __name__ == "__main__":
    app()
