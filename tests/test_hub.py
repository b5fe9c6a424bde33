"""Model resolution: the embedded GGUF, local folders, registered names, hub ids offline, and clear errors."""
import pytest

from swiftall.hub import resolve_model_dir
from swiftall.hub.embedded import embedded_gguf
from swiftall.models import get_model_meta, resolve_model
from swiftall.utils.errors import ConfigError, ModelNotFoundError


def test_embedded_default_resolves_from_the_installed_package(smol_dir):
    gguf = embedded_gguf()
    assert gguf.suffix == ".gguf" and "site-packages" in str(gguf)
    info = resolve_model("smollm2-135m-instruct")
    assert info.path == smol_dir and (smol_dir / "config.json").is_file()
    assert info.family.name == "llama" and info.template == "chatml"


def test_gguf_file_converts_once_into_a_cached_folder(smol_dir):
    first = resolve_model_dir(str(embedded_gguf()))
    assert first == smol_dir
    stamp = (first / "model.safetensors").stat().st_mtime
    assert resolve_model_dir(str(embedded_gguf())) == first
    assert (first / "model.safetensors").stat().st_mtime == stamp  # not converted again


def test_model_type_alone_selects_a_registered_model(smol_dir):
    assert resolve_model(None, "smollm2-135m-instruct").path == smol_dir


def test_model_type_with_model_names_the_family(tiny_dir):
    info = resolve_model(str(tiny_dir), "qwen2.5-0.5b-instruct")
    assert info.path == tiny_dir and info.family.name == "qwen2"


def test_unregistered_folder_still_loads_with_family_from_its_config(tiny_dir):
    info = resolve_model(str(tiny_dir))
    assert info.meta is None and info.family.name == "llama"


def test_offline_hub_id_names_the_id_and_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("someorg/not-cached-model")
    message = str(err.value)
    assert "someorg/not-cached-model" in message and str(tmp_path / "hf-cache") in message
    assert "swiftall download --model someorg/not-cached-model" in message


def test_offline_hub_id_found_in_the_cache_through_huggingface_hub(monkeypatch, tmp_path, tiny_dir):
    """A snapshot laid out the way huggingface_hub caches it is found offline by the real client."""
    import shutil

    cache = tmp_path / "hf-cache"
    snapshot = cache / "models--someorg--tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_dir, snapshot)
    (cache / "models--someorg--tiny" / "refs").mkdir()
    (cache / "models--someorg--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert resolve_model_dir("someorg/tiny") == snapshot


def test_modelscope_offline_error_names_the_id(monkeypatch, tmp_path):
    pytest.importorskip("modelscope")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    from swiftall.hub import download_model

    with pytest.raises(ModelNotFoundError, match="Qwen/NotCached.*ModelScope"):
        download_model("Qwen/NotCached", hub="modelscope", local_only=True)


@pytest.mark.parametrize("value, message", [
    ("./no/such/folder", "no such folder or file"),
    ("justaname", "not a hub id"),
])
def test_bad_model_values_say_what_to_do(value, message):
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_model(value)


def test_unknown_model_type_is_refused():
    with pytest.raises(ConfigError, match="--model_type nope"):
        resolve_model("x", "nope")


def test_registry_entries_carry_template_and_hub_ids():
    meta = get_model_meta("qwen2.5-7b-instruct")
    assert meta.hf_id == "Qwen/Qwen2.5-7B-Instruct" and meta.family == "qwen2"
    from swiftall.models import get_family

    for name in ("llama", "qwen2", "qwen3", "mistral", "gemma", "phi3"):
        family = get_family(name)
        assert family.template, name
