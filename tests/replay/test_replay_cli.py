"""``dreamgym replay import|export|stats|search``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from replay_helpers import transition
from typer.testing import CliRunner

from dreamgym_sdk.cli.replay import app
from dreamgym_sdk.types import Source

runner = CliRunner()


def test_import_stats_search_export(tmp_path: Path) -> None:
    data = [
        transition(
            i,
            source=Source.SYNTHETIC if i % 4 == 0 else Source.REAL,
            environment=("kitchen", "garden")[i % 2],
        )
        for i in range(40)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(t.model_dump_json() + "\n" for t in data))
    uri = str(tmp_path / "db")
    common = ["--uri", uri]

    result = runner.invoke(app, ["import", str(source), *common, "--embedder", "hashing", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "records": 40,
        "transitions": 40,
        "added": 40,
    }

    result = runner.invoke(app, ["stats", *common, "--json"])  # the embedder is read from the table
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["total"] == 40
    assert stats["by_source"] == {"real": 30, "synthetic": 10}
    assert stats["by_environment"] == {"garden": 20, "kitchen": 20}
    assert stats["by_reward"] == {"0": 20, "1": 20}
    assert stats["embedder"] == "hashing-256-bigrams"

    result = runner.invoke(app, ["stats", *common])
    assert result.exit_code == 0
    assert "by environment" in result.stdout and "garden" in result.stdout

    t = data[5]
    result = runner.invoke(app, ["search", t.state, t.action, *common, "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits[0]["id"] == t.id and len(hits) == 3
    assert all(h["source"] == "real" for h in hits)
    result = runner.invoke(app, ["search", t.state, t.action, *common, "--source", "synthetic", "--json"])
    assert result.exit_code == 0 and {h["source"] for h in json.loads(result.stdout)} == {"synthetic"}
    result = runner.invoke(app, ["search", t.state, t.action, *common])
    assert result.exit_code == 0 and t.id in result.stdout

    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["export", str(out), *common, "--source", "real", "--vectors"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["import", str(out), "--uri", str(tmp_path / "copy"), "--embedder", "hashing"]
    )
    assert result.exit_code == 0, result.output
    assert "30 added" in result.output


def test_a_bad_file_is_reported_and_nothing_imported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(transition(1).model_dump_json() + "\n" + '{"task_id": "t"}\n')
    uri = str(tmp_path / "db")
    result = runner.invoke(app, ["import", str(bad), "--uri", uri, "--embedder", "hashing"])
    assert result.exit_code == 1
    assert "line 2" in result.output and "episode_id" in result.output
    result = runner.invoke(app, ["stats", "--uri", uri, "--json"])
    assert json.loads(result.stdout)["total"] == 0


def test_config_file(tmp_path: Path) -> None:
    config = tmp_path / "dreamgym.toml"
    config.write_text(f'[replay]\nuri = "{tmp_path / "db"}"\ntable = "mine"\nembedder = "hashing"\n')
    data = tmp_path / "in.jsonl"
    data.write_text(transition(1).model_dump_json() + "\n")
    assert runner.invoke(app, ["import", str(data), "--config", str(config)]).exit_code == 0
    assert (tmp_path / "db" / "mine.lance").is_dir()


def test_read_only_commands_never_create_a_buffer(tmp_path: Path) -> None:
    typo = ["--uri", str(tmp_path / "tpyo")]
    commands = [
        ["stats", *typo],
        ["export", str(tmp_path / "out.jsonl"), *typo],
        ["search", "a room", "look", *typo, "--embedder", "hashing"],
    ]
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 1, (command, result.output)
        assert "no replay buffer at" in result.output
    assert not (tmp_path / "tpyo").exists()


def test_export_refuses_a_format_it_does_not_write(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "out.csv"), "--uri", str(tmp_path / "buffer")])
    assert result.exit_code == 2 and ".jsonl, .jsonl.gz or .parquet" in result.output
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "buffer").exists()


def test_import_refuses_a_format_it_cannot_read_before_creating_a_buffer(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("state,action\n")
    result = runner.invoke(app, ["import", str(tmp_path / "data.csv"), "--uri", str(tmp_path / "buffer")])
    assert result.exit_code == 2 and ".jsonl, .jsonl.gz or .parquet" in result.output
    assert not (tmp_path / "buffer").exists()


def test_ctrl_c_in_an_import_says_what_was_kept_and_a_rerun_adds_the_rest(tmp_path: Path) -> None:
    """A real process and a real SIGINT, sent once the first batch is in the table."""
    lancedb = pytest.importorskip("lancedb")
    total = 3_000  # six writes (two in flight at once): the signal comes while the last ones are embedded
    source = tmp_path / "in.jsonl"
    source.write_text("".join(transition(i).model_dump_json() + "\n" for i in range(total)))
    uri = tmp_path / "db"
    command = [sys.executable, "-m", "dreamgym_sdk", "replay", "import", str(source), "--uri", str(uri)]
    process = subprocess.Popen(
        [*command, "--embedder", "minilm", "--batch-size", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def rows() -> int:
        try:
            return lancedb.connect(str(uri)).open_table("transitions").count_rows()
        except (ValueError, FileNotFoundError, OSError):  # not created yet
            return 0

    deadline = time.monotonic() + 300  # a hang guard, not a timing
    while rows() == 0:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    said = re.search(r"interrupted: the file's first (\d+) transitions are in", " ".join(err.split()))
    assert said is not None, err
    kept = rows()
    assert 0 < int(said.group(1)) <= kept < total
    result = runner.invoke(app, ["import", str(source), "--uri", str(uri), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["added"] == total - kept


def test_a_buffer_may_be_called_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LanceDB alone takes a bare ``db`` for a cloud database and asks for an API key."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text(transition(1).model_dump_json() + "\n")
    result = runner.invoke(app, ["import", "in.jsonl", "--uri", "db", "--embedder", "hashing", "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "db").is_dir()
