"""GGUF export through llama.cpp's converter (and quantizer where llama-cpp-python is installed): the files reload
in transformers (and llama.cpp), carry the chat template and special tokens, and answer like the original."""
import json
from types import SimpleNamespace as NS

import pytest

from swiftall.export.gguf import converter_available, gguf_metadata, llama_cpp_available
from swiftall.pipelines.export import export_main

pytestmark = pytest.mark.skipif(not converter_available(), reason="llama.cpp's converter is not installed "
                                "(pip install 'swiftall[export]')")
needs_llama_cpp = pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed (its "
                                     "quantizer makes the k-quants; pip install llama-cpp-python)")
PROMPTS = ["What is the capital of France?", "Name three colors.", "What is 12 plus 7?"]


def report_of(folder):
    return json.loads((folder / "export_report.json").read_text())


def test_tiny_model_f16_and_q8_0_reload_in_transformers_and_pass_the_check(tmp_path, tiny_dir):
    for kind in ("f16", "q8_0"):
        out = export_main(NS(model=str(tiny_dir), quant_method="gguf", gguf_type=kind, check_n_samples=4,
                             check_prompts=PROMPTS[:1], check_max_new_tokens=8, output_dir=str(tmp_path / kind)))
        report = report_of(out)
        assert sorted(report["files"]) == ["model-%s.gguf" % kind, "swiftall_export.json"]
        check = report["check"]
        assert check["passed"] and check["rows"] == 4 and check["top1_agreement"] > 0.9, check
        assert check["perplexity_increase"] < 0.01
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no scratch left behind


@pytest.fixture(scope="module")
def smol_f16(tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf") / "smol-f16"
    export_main(NS(model="smollm2-135m-instruct", quant_method="gguf", gguf_type="f16", to_ollama=True,
                   check_n_samples=8, check_prompts=PROMPTS, check_max_new_tokens=20, output_dir=str(out)))
    return out


@pytest.mark.slow
@pytest.mark.heavy
def test_f16_gguf_answers_exactly_like_the_original(smol_f16, smol_dir):
    check = report_of(smol_f16)["check"]
    assert check["greedy_same"] == len(PROMPTS), check["greedy"]
    assert "Paris" in check["greedy"][0]["exported"]
    assert check["mean_kl"] < 1e-3 and check["top1_agreement"] > 0.99 and check["passed"]
    from transformers import AutoTokenizer

    meta = gguf_metadata(smol_f16 / "model-f16.gguf")
    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    assert meta["tokenizer.chat_template"] == tokenizer.chat_template
    assert meta["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    assert meta["general.architecture"] == "llama"
    assert (smol_f16 / "Modelfile").read_text().startswith("FROM ./model-f16.gguf\n")


@pytest.mark.slow
@pytest.mark.heavy
def test_export_check_command_rechecks_an_existing_export(smol_f16):
    (smol_f16 / "export_report.json").unlink()
    folder = export_main(NS(model="smollm2-135m-instruct", check_path=str(smol_f16 / "model-f16.gguf"),
                            check_n_samples=4, check_prompts=PROMPTS[:1]))
    report = report_of(folder)
    assert report["command"] == "export --check" and report["check"]["passed"]
    assert report["check"]["greedy"][0]["same"]


@pytest.mark.slow
@pytest.mark.heavy
def test_q8_0_gguf_reloads_in_transformers_within_threshold(tmp_path):
    out = export_main(NS(model="smollm2-135m-instruct", quant_method="gguf", quant_bits=8, check_n_samples=8,
                         check_prompts=PROMPTS[:1], output_dir=str(tmp_path / "q8"), export_check=True))
    report = report_of(out)
    assert report["gguf_type"] == "q8_0" and report["check"]["passed"]
    # measured: +2.4% perplexity and 97.3% top-1 on one run, +3.7% and 94.6% on another (weights already Q4_1)
    assert report["check"]["perplexity_increase"] < 0.05 and report["check"]["top1_agreement"] > 0.92
    assert report["files"]["model-q8_0.gguf"] < 0.6 * 270_000_000   # about half of f16


@pytest.mark.slow
@pytest.mark.heavy
@needs_llama_cpp
def test_q4_k_m_through_llama_cpps_quantizer_loads_in_llama_cpp(tmp_path):
    # the path, not the quality: the embedded weights were Q4_1 already, and q4_k_m of a 135M model drifts (its
    # greedy answer to the France question turned French in a manual run), so the threshold is loose here
    out = export_main(NS(model="smollm2-135m-instruct", quant_method="gguf", gguf_type="q4_k_m", check_n_samples=8,
                         check_prompts=PROMPTS[:1], output_dir=str(tmp_path / "q4"), max_ppl_increase=10.0))
    report = report_of(out)
    assert report["check"]["loader"] == "llama.cpp" and report["check"]["passed"]
    assert report["files"]["model-q4_k_m.gguf"] < 0.5 * 270_000_000


def test_lora_adapter_alone_becomes_a_llama_cpp_lora_gguf(tmp_path, tiny_dir):
    import torch
    from gguf import GGUFReader
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    adapter = tmp_path / "adapter"
    peft.save_pretrained(adapter)
    out = export_main(NS(model=str(tiny_dir), adapters=[str(adapter)], gguf_lora=True, output_dir=str(tmp_path / "g")))
    meta = gguf_metadata(out / "adapter-lora.gguf")
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 8.0 and meta["general.architecture"] == "llama"
    tensors = {t.name: t for t in GGUFReader(str(out / "adapter-lora.gguf")).tensors}
    assert sorted(tensors) == sorted(f"blk.{i}.attn_{p}.weight.lora_{x}" for i in range(2) for p in "qv" for x in "ab")
    assert list(tensors["blk.0.attn_q.weight.lora_a"].shape) == [32, 4]   # ggml order: (in, rank)
    assert list(tensors["blk.0.attn_q.weight.lora_b"].shape) == [4, 32]   # (rank, out)
