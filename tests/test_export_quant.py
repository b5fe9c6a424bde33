"""bnb 4/8-bit and GPTQ 4-bit exports of the embedded model reload through transformers' quantizers, answer, and
stay within the perplexity threshold of the original on held-out text. Slow on CPU (GPTQ calibrates on 8 rows)."""
import importlib.util
import json
from types import SimpleNamespace as NS

import pytest

from swiftall.pipelines.export import export_main

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
PROMPTS = ["What is the capital of France?"]


def has(module):
    return importlib.util.find_spec(module) is not None


def export(tmp_path, **kw):
    out = export_main(NS(model="smollm2-135m-instruct", check_n_samples=6, check_prompts=PROMPTS,
                         check_max_new_tokens=12, output_dir=str(tmp_path / "out"), **kw))
    return out, json.loads((out / "export_report.json").read_text())


@pytest.mark.skipif(not has("bitsandbytes"), reason="bitsandbytes is not installed (pip install 'swiftall[export]')")
@pytest.mark.parametrize("bits", [4, 8])
def test_bnb_export_reloads_and_answers_within_threshold(tmp_path, bits):
    out, report = export(tmp_path, quant_method="bnb", quant_bits=bits, max_ppl_increase=0.25)
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "bitsandbytes" and config[f"load_in_{bits}bit"]
    check = report["check"]
    assert check["passed"] and check["perplexity_increase"] < 0.25, check
    assert "Paris" in check["greedy"][0]["exported"], check["greedy"]


@pytest.mark.skipif(not (has("gptqmodel") and has("optimum")),
                    reason="GPTQModel/optimum are not installed (pip install 'swiftall[export]')")
def test_gptq_4bit_export_uses_a_group_size_that_fits_and_answers(tmp_path):
    out, report = export(tmp_path, quant_method="gptq", quant_bits=4, quant_n_samples=8, max_ppl_increase=0.5)
    assert report["group_size_requested"] == 128 and report["group_size"] == 64   # 576 = 9 * 64
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["bits"] == 4 and config["group_size"] == 64
    check = report["check"]
    assert check["passed"] and check["top1_agreement"] > 0.6, check
    assert "Paris" in check["greedy"][0]["exported"], check["greedy"]


@pytest.mark.skipif(not (has("gptqmodel") and has("optimum")),
                    reason="GPTQModel/optimum are not installed (pip install 'swiftall[export]')")
def test_awq_4bit_export_through_gptqmodel_reloads_and_answers(tmp_path):
    # measured (16 calibration rows, group 64): +57% perplexity, 73% top-1, "The capital of France is Paris, France"
    out, report = export(tmp_path, quant_method="awq", quant_bits=4, quant_n_samples=16, max_ppl_increase=1.0)
    config = json.loads((out / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "awq" and config["bits"] == 4 and config["group_size"] == 64
    check = report["check"]
    assert check["passed"] and check["loader"] == "transformers" and check["top1_agreement"] > 0.6, check
    assert "Paris" in check["greedy"][0]["exported"], check["greedy"]
