"""LoRA over HQQ (4-bit, the hqq package) and quanto (int8, optimum-quanto) bases on this CPU: on the embedded model's
first 4 blocks, a short run of the memorisation task halves the loss with LoRA wrapped around the quantized layers,
and the adapter saves and answers in `infer` (on the full-precision base, as a QLoRA adapter does)."""
import json

import pytest

from swiftall import InferEngine, sft_main
from swiftall.pipelines import sft as sft_pipeline
from test_tuners_learn import GREEDY, data, question, smol4, WORDS  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def quantized_layer(method):
    if method == "hqq":
        from hqq.core.quantize import HQQLinear

        return HQQLinear
    from optimum.quanto import QModuleMixin

    return QModuleMixin


@pytest.mark.parametrize("method,bits,package", [("hqq", 4, "hqq"), ("quanto", 8, "optimum.quanto")])
def test_lora_learns_over_a_quantized_base(method, bits, package, smol4, data, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip(package)
    captured = {}
    real = sft_pipeline.build_trainer

    def capture(model, *args, **kwargs):
        captured["model"] = model
        return real(model, *args, **kwargs)

    monkeypatch.setattr(sft_pipeline, "build_trainer", capture)
    out = tmp_path / "run"
    sft_main(["--model", str(smol4), "--dataset", str(data), "--output_dir", str(out), "--max_steps", "12",
              "--per_device_train_batch_size", "4", "--learning_rate", "2e-3", "--logging_steps", "1",
              "--save_steps", "1000", "--report_to", "none", "--warmup_ratio", "0", "--lr_scheduler_type", "constant",
              "--torch_dtype", "float32", "--quant_method", method, "--quant_bits", str(bits)])
    losses = [r["loss"] for r in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "loss" in r]
    assert sum(losses[-2:]) / 2 <= 0.5 * losses[0], (method, losses)
    wrapped = {name.rsplit(".", 2)[-2] for name, module in captured["model"].named_modules()
               if name.endswith("base_layer") and isinstance(module, quantized_layer(method))}
    assert wrapped == PROJECTIONS, wrapped
    assert json.loads((out / "args.json").read_text())["quant_method"] == method
    assert set(json.loads((out / "adapter_config.json").read_text())["target_modules"]) == PROJECTIONS
    answers = [r.text for r in InferEngine(adapters=[str(out)]).infer([question(w) for w in WORDS], GREEDY)]
    assert len(answers) == len(WORDS) and all(answers), answers
