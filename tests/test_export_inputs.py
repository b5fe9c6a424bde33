"""Export settings and bad input, each a clear message; the staged output folder; the check's arithmetic; the
Ollama Modelfile from SmolLM2's own chat template. Fast: no model weights except a tiny random llama."""
import importlib.util
import json
from types import SimpleNamespace as NS

import numpy as np
import pytest

from swiftall.export.check import compare_logits, enforce, run_check
from swiftall.export.errors import ExportCheckError
from swiftall.export.options import ExportOptions
from swiftall.export.output import staged_dir
from swiftall.export.quant import fit_group_size
from swiftall.pipelines.export import export_main
from swiftall.utils.errors import ConfigError


def opts(**kw):
    return ExportOptions.from_config(NS(**kw))


def test_unknown_method_and_bits_the_method_lacks_are_refused():
    with pytest.raises(ConfigError, match="--quant_method hqq: unknown method; choose one of gptq, awq, bnb"):
        opts(quant_method="hqq")
    with pytest.raises(ConfigError, match="bnb writes 4/8-bit models only"):
        opts(quant_method="bnb", quant_bits=3)
    with pytest.raises(ConfigError, match="awq writes 4-bit models only"):
        opts(quant_method="awq", quant_bits=8)
    with pytest.raises(ConfigError, match="--gguf_type q9_k: unknown"):
        opts(quant_method="gguf", gguf_type="q9_k")
    with pytest.raises(ConfigError, match="--to_ollama true writes a Modelfile for a GGUF file"):
        opts(quant_method="gptq", to_ollama=True)


def test_defaults_follow_the_method():
    assert opts(quant_method="gguf").gguf_type == "f16"
    assert opts(quant_method="gguf", quant_bits=4).gguf_type == "q4_k_m"
    assert opts(gguf_type="q8_0").quant_method == "gguf"
    assert opts(quant_method="gptq").quant_bits == 4 and opts(quant_method="gptq").group_size == 128
    assert opts(quant_method="bnb", quant_bits=8).label() == "bnb-int8"


def test_options_take_their_defaults_from_export_config_and_its_aliases(monkeypatch):
    from swiftall.config import ExportConfig

    defaults = ExportConfig.field_defaults()
    o = opts(quant_method="gptq")
    names = ("group_size", "quant_n_samples", "quant_batch_size", "max_ppl_increase", "check_n_samples",
             "check_max_new_tokens", "export_check", "hub_private", "bnb_4bit_quant_type")
    assert {n: getattr(o, n) for n in names} == {n: defaults[n] for n in names}
    assert o.quant_seqlen == min(defaults["max_length"], 512) and o.overwrite is defaults["overwrite_output_dir"]
    monkeypatch.setattr(ExportConfig, "field_defaults", classmethod(lambda cls: {**defaults, "group_size": 64}))
    assert opts(quant_method="gptq").group_size == 64        # one default, read from the config
    assert opts(overwrite=True).overwrite and opts(check="x.gguf").check == "x.gguf"   # ms-swift's aliases


def test_group_size_falls_back_to_the_largest_that_divides_and_says_so(caplog):
    smollm = {"q_proj": 576, "k_proj": 576, "down_proj": 1536}
    assert fit_group_size(128, {"a": 1024, "b": 4096}) == 128
    with caplog.at_level("INFO", logger="swiftall"):
        assert fit_group_size(128, smollm) == 64
    assert "using 64" in caplog.text
    assert fit_group_size(-1, smollm) == -1
    with pytest.raises(ConfigError, match=r"--group_size 8 fits no layer.*pass --group_size 64"):
        fit_group_size(8, smollm)
    with pytest.raises(ConfigError, match="fits no layer"):
        fit_group_size(128, {"odd": 100})


def test_existing_output_folder_is_refused_unless_overwrite(tmp_path, tiny_dir):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty.*--overwrite true"):
        export_main(NS(model=str(tiny_dir), quant_method="gguf", output_dir=str(out)))
    assert (out / "keep.txt").read_text() == "mine"


def test_failed_export_leaves_no_folder_that_looks_complete(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with staged_dir(out, overwrite=False) as stage:
            (stage / "model.safetensors").write_text("half")
            raise RuntimeError("quantizer crashed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with staged_dir(out, overwrite=False) as stage:
        (stage / "a").write_text("1")
    assert (out / "a").read_text() == "1" and len(list(tmp_path.iterdir())) == 1


def test_zero_row_calibration_set_is_refused_before_any_model_loads(tmp_path, tiny_dir):
    empty = tmp_path / "calib.jsonl"
    empty.write_text(json.dumps({"text": "x"}) + "\n")       # one token: nothing to predict
    with pytest.raises(ConfigError, match="calibration data .*calib.jsonl.* has 0 usable rows"):
        export_main(NS(model=str(tiny_dir), quant_method="gptq", dataset=[str(empty)],
                       output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gptqmodel") is None, reason="GPTQModel is not installed")
def test_awq_refuses_a_model_whose_layer_sizes_it_cannot_quantize(tmp_path, tiny_dir):
    # seen on GPTQModel 7.7 before this check: a bare AssertionError deep in its AWQ clip search
    with pytest.raises(ConfigError, match=r"awq cannot quantize .*multiple of 64.*\[16, 32\]; use --quant_method gptq"):
        export_main(NS(model=str(tiny_dir), quant_method="awq", quant_n_samples=4, output_dir=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_gptq_refuses_on_cpu_a_model_its_cpu_kernel_cannot_load_back(tiny_dir, monkeypatch):
    # seen on GPTQModel 7.7 before this check: the export was written, then its check died with a bare
    # NotImplementedError from TorchCpuAvx512Linear ("out_features: 16 must be divisible by [32]")
    import torch

    from swiftall.export.quant import check_gptq_shapes

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"multiple of 32, and this model has 4 that are not .*k_proj: 16\); use "):
        check_gptq_shapes(tiny_dir)
    check_gptq_shapes(tiny_dir, skip=["model.layers"])   # nothing left to quantize: nothing to refuse
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_gptq_shapes(tiny_dir)   # CUDA kernels take these sizes


class FakeScorer:
    loader = "fake"

    def __init__(self, logits, answer):
        self._logits, self._answer = logits, answer

    def logits(self, ids):
        return self._logits[: len(ids)]

    def greedy(self, ids, max_new_tokens, stop_ids):
        return self._answer


def test_identical_models_agree_and_a_drifted_one_fails_keeping_files(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(6, 10)).astype(np.float32)
    rows = [[1, 2, 3, 4, 5, 6], [3, 1, 4, 1, 5]]
    same = compare_logits(FakeScorer(base, []), FakeScorer(base.copy(), []), rows)
    assert same["mean_kl"] == pytest.approx(0, abs=1e-9) and same["top1_agreement"] == 1.0
    assert same["perplexity_original"] == pytest.approx(same["perplexity_exported"])
    assert same["tokens"] == 9
    row = rows[0]
    worse = base.copy()
    worse[np.arange(5), row[1:]] -= 4.0      # every true next token much less likely: perplexity rises e^4-fold

    class Tok:
        eos_token_id = 0

        def apply_chat_template(self, *a, **k):
            return [1, 2]

        def decode(self, ids, **k):
            return " ".join(map(str, ids))

        def get_vocab(self):
            return {}

    result = run_check(FakeScorer(base, [5]), FakeScorer(worse, [6]), Tok(), [row], ["q"], 4, 0.10)
    assert result["mean_kl"] > 0 and result["greedy"][0] == {"prompt": "q", "original": "5", "exported": "6",
                                                             "same": False}
    assert result["perplexity_increase"] > 10 and not result["passed"]
    with pytest.raises(ExportCheckError, match="files are kept in"):
        enforce({"check": result}, tmp_path)


def test_ollama_modelfile_has_smollm_template_and_stop_tokens(tmp_path, smol_dir):
    from transformers import AutoTokenizer

    from swiftall.export.ollama import write_modelfile

    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    text = write_modelfile(tmp_path, "model-q8_0.gguf", tokenizer, {"temperature": 0.2}).read_text()
    assert text.startswith("FROM ./model-q8_0.gguf\n")
    assert '{{ if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n' in text
    assert '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n' in text
    assert '{{ end }}{{ end }}<|im_start|>assistant\n"""' in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0.2" in text
