"""One reader for every command's config: TOML, YAML and JSON files, a command's own table, dotted
overrides, and one error style (file, key, a suggestion for a misspelt key, never a value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dreamgym_sdk.config_files import load_config, parse_override, read_config_file
from dreamgym_sdk.errors import ConfigError
from dreamgym_sdk.replay import ReplayConfig
from dreamgym_sdk.serve import ServeConfig
from dreamgym_sdk.training.config_file import TrainConfig


def test_toml_yaml_and_json_files_and_a_commands_own_table(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('[replay]\nuri = "runs/replay"\n[serve]\nport = 9000\n')
    (tmp_path / "b.json").write_text('{"uri": "runs/other"}')
    assert read_config_file(tmp_path / "a.toml", section="replay") == {"uri": "runs/replay"}
    assert load_config(ReplayConfig, tmp_path / "b.json").uri == "runs/other"
    assert load_config(ServeConfig, tmp_path / "a.toml", section="serve").port == 9000
    pytest.importorskip("yaml")
    (tmp_path / "c.yaml").write_text("serve:\n  port: 9001\n")
    assert load_config(ServeConfig, tmp_path / "c.yaml", {"port": None}, section="serve").port == 9001


def test_dotted_overrides_go_on_top_and_none_means_not_given(tmp_path: Path) -> None:
    (tmp_path / "t.toml").write_text('run_dir = "r"\n[loop]\nseed = 1\n')
    config = load_config(
        TrainConfig, tmp_path / "t.toml", {"loop.seed": "7", "run_dir": None, "tasks": "2024"}
    )
    assert (config.run_dir, config.loop.seed, config.tasks) == ("r", 7, "2024")  # a string stays a string


def test_errors_name_the_key_suggest_the_closest_and_hide_values(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"loop\.grup_size: unknown key \(did you mean 'loop\.group_size'\?\)"
    ):
        load_config(TrainConfig, None, {"loop.grup_size": 8}, what="training config")
    # a setting outside its table is found where it lives, however deep
    with pytest.raises(
        ConfigError, match=r"iteratons: unknown key \(did you mean 'loop\.budget\.iterations'\?\)"
    ):
        load_config(TrainConfig, None, {"iteratons": 3})
    with pytest.raises(ConfigError, match=r"zzz: unknown key$"):
        load_config(TrainConfig, None, {"zzz": 3})
    with pytest.raises(ConfigError, match=r"invalid serve configuration: api_key") as raised:
        load_config(ServeConfig, None, {"api_key": ["sk-secret-value"]}, what="serve configuration")
    assert "sk-secret-value" not in str(raised.value)
    (tmp_path / "bad.toml").write_text("uri = [\n")
    with pytest.raises(ConfigError, match=r"cannot parse config file .*bad\.toml"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", "3"), ("2024", "2024"), ("[0, 1]", [0, 1]), ('{"a": 1}', {"a": 1}), ("null", None)],
)
def test_set_values(text: str, value: object) -> None:
    assert parse_override(text) == value


def test_a_table_changes_the_fields_default_instead_of_replacing_it(tmp_path: Path) -> None:
    from dreamgym_sdk.demo.config import DemoConfig

    assert DemoConfig().game.open, "the demo's default world has closed containers"
    config = load_config(DemoConfig, None, {"game.recipe": "2", "game.take": "2"})
    game = config.game
    assert (game.recipe, game.take, game.open, game.split) == (2, 2, True, "train")
    (tmp_path / "demo.toml").write_text("[game]\nopen = false\ncut = true\n")
    config = load_config(DemoConfig, tmp_path / "demo.toml")
    assert (config.game.open, config.game.cut, config.game.split) == (False, True, "train")
