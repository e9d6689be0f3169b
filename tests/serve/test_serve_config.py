"""Configuration (file, flags, tokens) and the ``dreamgym serve`` command line."""

from __future__ import annotations

import signal
import sys
import tomllib
from pathlib import Path

import anyio
import pytest
from serve_helpers import TOKEN_A, task
from typer.testing import CliRunner

from dreamgym_sdk.cli.serve import app
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.serve import TOKENS_ENV, Client, ServeConfig, load_config


def test_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[serve]\nport = 9001\nmax_steps = 12\nrate_limit = 5.0\n")
    config = load_config(path, max_steps=7, host=None)
    assert (config.host, config.port, config.max_steps, config.rate_limit, config.burst) == (
        "127.0.0.1",
        9001,
        7,
        5.0,
        5,
    )
    top_level = tmp_path / "top.toml"
    top_level.write_text("idle_timeout = 3.5\n")
    assert load_config(top_level).idle_timeout == 3.5
    pytest.importorskip("yaml")
    yaml_path = tmp_path / "serve.yaml"
    yaml_path.write_text("serve:\n  port: 9002\n  environment: webshop\n")
    assert (load_config(yaml_path).port, load_config(yaml_path).environment) == (9002, "webshop")


def test_bad_config_is_reported_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_config(None, port=70_000)
    with pytest.raises(ConfigError, match="unknown_key"):
        load_config(None, unknown_key=1)
    broken = tmp_path / "broken.toml"
    broken.write_text('tokens = ["s3cret-token"]\nport = \n')
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert "s3cret-token" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_tokens_come_from_config_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="no bearer token"):
        ServeConfig().resolved_tokens()
    assert ServeConfig(allow_unauthenticated=True).resolved_tokens() == ()
    token_file = tmp_path / "tokens"
    token_file.write_text("# team tokens\nfile-token-1\n\n  file-token-2  \n")
    monkeypatch.setenv(TOKENS_ENV, "env-token-1, env-token-2 file-token-1")
    config = ServeConfig.model_validate({"tokens": ["cfg-token"], "tokens_file": token_file})
    assert config.resolved_tokens() == (
        "cfg-token",
        "file-token-1",
        "file-token-2",
        "env-token-1",
        "env-token-2",
    )
    assert "cfg-token" not in repr(config) and "cfg-token" not in str(config.model_dump())


def test_print_config_masks_secrets(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[serve]\nmodel = "openai/gpt-4o-mini"\nmax_steps = 9\n')
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(path),
            "--token",
            "tok-cli-secret",
            "--api-key",
            "sk-cli-secret-123456",
            "--port",
            "0",
            "--print-config",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = tomllib.loads(result.output)  # TOML: what --config reads
    assert (printed["model"], printed["max_steps"], printed["port"]) == ("openai/gpt-4o-mini", 9, 0)
    assert "tok-cli-secret" not in result.output and "sk-cli-secret" not in result.output


def test_cli_refuses_to_start_without_a_token() -> None:
    result = CliRunner().invoke(app, ["--port", "0"])
    assert result.exit_code == 2
    assert "no bearer token configured" in result.output


async def test_cli_serves_and_stops_gracefully_on_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "dreamgym_sdk.cli.serve",
        "--port",
        "0",
        "--max-steps",
        "3",
        "--log-level",
        "debug",
    ]
    env = {"DREAMGYM_SERVE_TOKENS": TOKEN_A, "PATH": "/usr/bin:/bin"}
    async with await anyio.open_process(command, env=env) as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(60):
            while b"listening on " not in seen or not seen.endswith(b"\n"):
                seen += await process.stderr.receive()
        url = seen.split(b"listening on ")[1].split()[0].decode()
        async with Client(url, token=TOKEN_A) as env_client:
            obs, _ = await env_client.reset(task=task("cli", 2))
            assert obs == "Task: cli"
            results = [await env_client.step("go") for _ in range(3)]
            assert results[-1].truncated and not results[-1].terminated
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            while True:
                try:
                    seen += await process.stderr.receive()
                except anyio.EndOfStream:
                    break
            assert await process.wait() == 0
    assert b"stopped" in seen
    assert TOKEN_A.encode() not in seen


def test_serving_a_directory_without_games_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--games", str(tmp_path), "--port", "0", "--allow-unauthenticated"])
    assert result.exit_code == 2 and "no TextWorld games" in result.output
