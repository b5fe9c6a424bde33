"""What comes after an export: uploading it (offline here: a clear message, the export kept) and LoRA training on a
quantized export (`swiftall sft --model EXPORTED_DIR --train_type lora`). Tiny random llama only."""
from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace as NS

import pytest

from swiftall.export.hub import push_folder
from swiftall.pipelines.export import export_main
from swiftall.utils.errors import SwiftallError


def gguf_export(tiny_dir, out, **kw):
    return export_main(NS(model=str(tiny_dir), quant_method="gguf", gguf_type="f16", check_n_samples=2,
                          check_prompts=["Hi"], check_max_new_tokens=4, output_dir=str(out), **kw))


def test_push_offline_says_how_to_upload_later_and_keeps_the_export(tmp_path, tiny_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "exported"
    with pytest.raises(SwiftallError, match=r"offline.*kept in .*exported.*hf upload me/tiny"):
        gguf_export(tiny_dir, out, push_to_hub=True, hub_model_id="me/tiny")
    assert (out / "model-f16.gguf").is_file() and (out / "export_report.json").is_file()


def test_push_online_creates_the_repo_and_uploads_the_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class Api:
        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create", repo_id, private, exist_ok))

        def upload_folder(self, folder_path, repo_id):
            calls.append(("upload", folder_path, repo_id))

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SWIFTALL_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    assert push_folder(tmp_path, "me/tiny", private=False) == "me/tiny"
    assert calls == [("create", "me/tiny", False, True), ("upload", str(tmp_path), "me/tiny")]


def test_failed_upload_names_the_repo_folder_and_the_retry(tmp_path, monkeypatch):
    import huggingface_hub

    class Api:
        def create_repo(self, *args, **kwargs):
            raise OSError("401 Unauthorized")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("SWIFTALL_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    with pytest.raises(SwiftallError) as err:
        push_folder(tmp_path, "me/tiny")
    message = str(err.value)
    assert "401 Unauthorized" in message and f"hf upload me/tiny {tmp_path}" in message and "{" not in message


@pytest.fixture
def tiny64(tmp_path, smol_dir):
    """A tiny random llama whose layers are all 64 wide: bitsandbytes' CPU 4-bit kernels work in blocks of 64."""
    from conftest import save_tiny_llama

    return save_tiny_llama(tmp_path / "tiny64", smol_dir, hidden_size=64, intermediate_size=128,
                           num_key_value_heads=4)


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes is not installed")
def test_lora_trains_on_a_bnb_4bit_export_and_the_adapter_answers(tmp_path, tiny64, write_jsonl):
    from swiftall import infer_main, sft_main

    exported = export_main(NS(model=str(tiny64), quant_method="bnb", quant_bits=4, check_n_samples=2,
                              check_prompts=["Hi"], check_max_new_tokens=4, max_ppl_increase=10.0,
                              output_dir=str(tmp_path / "nf4")))
    assert json.loads((exported / "config.json").read_text())["quantization_config"]["load_in_4bit"]
    data = write_jsonl([{"query": f"code {i}?", "response": f"It is {i}{i}."} for i in range(8)])
    summary = sft_main(["--model", str(exported), "--train_type", "lora", "--dataset", str(data), "--max_steps", "3",
                        "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--save_steps", "3",
                        "--output_dir", str(tmp_path / "run")])
    run = tmp_path / "run"
    assert summary["global_step"] == 3 and (run / "adapter_model.safetensors").is_file()
    rows = infer_main(["--adapters", str(run), "--val_dataset", str(data), "--result_path", str(tmp_path / "r.jsonl"),
                       "--max_new_tokens", "4"])
    assert len(rows) == 8 and all(isinstance(r["response"], str) for r in rows)
