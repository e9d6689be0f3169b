"""Model strings choose providers; configuration overrides are validated; heavy imports stay lazy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from dreamgym_sdk.errors import ConfigError, MissingExtraError
from dreamgym_sdk.providers import ChatRequest, Provider, ProviderConfig, check_model_string, get_provider
from dreamgym_sdk.providers.hf import HFProvider
from dreamgym_sdk.providers.litellm import LiteLLMProvider
from dreamgym_sdk.providers.openai_compat import OpenAICompatProvider
from dreamgym_sdk.providers.vllm import VLLMProvider


@pytest.mark.parametrize(
    ("model", "overrides", "kind"),
    [
        ("hf:/models/tiny", {}, HFProvider),
        ("vllm:/models/tiny", {}, VLLMProvider),
        ("openai/qwen", {"api_base": "http://127.0.0.1:8000/v1"}, OpenAICompatProvider),
        ("openai/gpt-4o-mini", {}, LiteLLMProvider),
        ("hosted_vllm/qwen", {"api_base": "http://127.0.0.1:8000/v1"}, OpenAICompatProvider),
        ("anthropic/claude-3-5-haiku-latest", {}, LiteLLMProvider),
    ],
)
async def test_model_strings_choose_providers(model: str, overrides: dict[str, str], kind: type) -> None:
    async with get_provider(model, **overrides) as provider:
        assert isinstance(provider, kind)
        assert isinstance(provider, Provider)
        assert provider.model == model


def test_overrides_apply_on_top_of_config() -> None:
    base = ProviderConfig(max_concurrency=5, api_key=SecretStr("secret-value-123"))
    provider = get_provider("openai/x", base, api_base="http://127.0.0.1:1/v1", request_timeout=3)
    assert provider.config.max_concurrency == 5
    assert provider.config.request_timeout == 3
    assert provider.config.key() == "secret-value-123"
    assert "secret-value-123" not in repr(provider.config)


@pytest.mark.parametrize(
    "overrides", [{"max_concurrency": 0}, {"no_such_field": 1}, {"api_base": "localhost:8000"}]
)
def test_invalid_overrides_raise_config_error(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        get_provider("openai/x", **overrides)


def test_empty_model_string() -> None:
    with pytest.raises(ConfigError):
        get_provider(" ")


def test_hosted_vllm_reads_litellm_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://127.0.0.1:8123/v1")
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "vllm-key-123")
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key-456")
    provider = get_provider("hosted_vllm/org/qwen-7b")
    assert isinstance(provider, OpenAICompatProvider)
    assert (provider.wire_model, provider.api_base) == ("org/qwen-7b", "http://127.0.0.1:8123/v1")
    assert provider._api_key() == "vllm-key-123"  # pyright: ignore[reportPrivateUsage]


def test_hosted_vllm_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOSTED_VLLM_API_BASE", raising=False)
    with pytest.raises(ConfigError, match="HOSTED_VLLM_API_BASE"):
        get_provider("hosted_vllm/qwen")


def test_openai_compat_strips_the_prefix_only() -> None:
    provider = get_provider("openai/org/model-7b", api_base="http://127.0.0.1:1/v1/")
    assert isinstance(provider, OpenAICompatProvider)
    assert provider.wire_model == "org/model-7b"
    assert provider.api_base == "http://127.0.0.1:1/v1"


def test_importing_and_routing_stay_light() -> None:
    code = (
        "import sys\n"
        "from dreamgym_sdk.providers import get_provider\n"
        "get_provider('hf:/x'); get_provider('vllm:/x'); get_provider('openai/x', api_base='http://h/v1')\n"
        "heavy = [m for m in ('torch', 'transformers', 'litellm', 'vllm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_checking_a_hosted_model_string_keeps_litellm_offline() -> None:
    # LiteLLM fetches its price map from the network on import unless told not to: offline, seconds of
    # retries and three warnings before `dreamgym demo --experience-model openai/...` said anything
    code = (
        "import os\n"
        "from dreamgym_sdk.providers import check_model_string\n"
        "check_model_string('openai/gpt-4o-mini')\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'True'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"} | {
        "OPENAI_API_KEY": "sk-x"
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "cost map" not in done.stderr


@pytest.mark.skipif("vllm" in sys.modules, reason="vllm is installed")
async def test_vllm_without_the_extra_names_it() -> None:
    try:
        import vllm  # noqa: F401  # pyright: ignore[reportMissingImports]
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed")
    async with get_provider("vllm:/models/tiny") as provider:
        with pytest.raises(MissingExtraError, match=r"dreamgym-sdk\[vllm\]"):
            await provider.complete(ChatRequest.of(None, "hi"))


@pytest.mark.parametrize(
    "model", ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "hosted_vllm/qwen", "gpt-4o-mini"]
)
def test_check_model_string_accepts_hosted_models(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    check_model_string(model)


def test_check_model_string_needs_the_api_key_of_a_hosted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="'openai/gpt-4o-mini' needs OPENAI_API_KEY in the environment"):
        check_model_string("openai/gpt-4o-mini")
    check_model_string("openai/my-model", api_base="http://127.0.0.1:8000/v1")  # a server of your own
    check_model_string("ollama/llama3")  # a local default base, no key


def test_check_model_string_accepts_local_paths_and_hub_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for model in (f"hf:{tmp_path}", f"vllm:{tmp_path}", "hf:Qwen/Qwen2.5-0.5B-Instruct"):
        check_model_string(model)
    check_model_string(str(tmp_path), bare_directories=True)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "empty"),
        ("hf:no-such-model", "no such file or directory 'no-such-model'"),
        ("vllm:./models/tiny", "no such file or directory './models/tiny'"),
        ("opnai/gpt-4o-mini", "'opnai' is not a LiteLLM provider (did you mean openai/...?)"),
        ("nosuchprovider/model", "'nosuchprovider' is not a LiteLLM provider"),
    ],
)
def test_check_model_string_names_the_mistake(model: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_model_string(model)
    assert message in str(caught.value)


def test_check_model_string_asks_for_hf_before_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="write hf:"):
        check_model_string(str(tmp_path))


def test_check_model_string_offline_needs_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="nor in the Hugging Face cache"):
        check_model_string("hf:no-such-org/no-such-model")
