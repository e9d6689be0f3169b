"""The ``judge fidelity`` command: JSONL in, JSON report out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dreamgym_sdk import Transition
from dreamgym_sdk.cli import judge as judge_cli
from dreamgym_sdk.providers import Provider
from dreamgym_sdk.testing import FunctionProvider

VERDICT = json.dumps(
    {"rationale": "fine", "causal_consistency": 2, "diversity": 1, "informativeness": 2, "hallucination": 2}
)


def write_transitions(path: Path, n: int) -> None:
    lines = [
        Transition(
            task_id="t", episode_id="e", step=i, state=f"s{i}", action="a", next_state=f"s{i + 1}", reward=0.0
        ).model_dump_json()
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n\n")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> FunctionProvider:
    fake = FunctionProvider(lambda _: VERDICT, model="test/judge")
    seen: list[tuple[str, str | None]] = []

    def resolve(model: str, api_base: str | None) -> Provider:
        seen.append((model, api_base))
        return fake

    monkeypatch.setattr(judge_cli, "_resolve_provider", resolve)
    fake.seen = seen  # type: ignore[attr-defined]
    return fake


def test_fidelity_command(tmp_path: Path, provider: FunctionProvider) -> None:
    data = tmp_path / "transitions.jsonl"
    write_transitions(data, 12)
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        judge_cli.app,
        [
            "fidelity",
            str(data),
            "--model",
            "openai/judge",
            "--samples",
            "5",
            "--api-base",
            "http://x/v1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["judged"] == 5 and report["failed"] == 0 and report["means"]["diversity"] == 1.0
    assert json.loads(out.read_text()) == report
    assert provider.seen == [("openai/judge", "http://x/v1")]  # type: ignore[attr-defined]
    assert len(provider.requests) == 5
    assert "causal_consistency" in result.stderr


def test_bad_line_is_named(tmp_path: Path, provider: FunctionProvider) -> None:
    data = tmp_path / "bad.jsonl"
    write_transitions(data, 2)
    data.write_text(data.read_text() + '{"task_id": "t"}\n')
    result = CliRunner().invoke(judge_cli.app, ["fidelity", str(data), "--model", "m", "--no-table"])
    assert result.exit_code == 2
    assert "bad.jsonl:4" in result.output


def test_empty_file(tmp_path: Path, provider: FunctionProvider) -> None:
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    result = CliRunner().invoke(judge_cli.app, ["fidelity", str(data), "--model", "m"])
    assert result.exit_code == 2 and "no transitions" in result.output
