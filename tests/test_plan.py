"""swiftall plan: shapes from configs (stored ones checked against real ones), component sizes against what torch and
peft really allocate, recommendations that fit their machines, the check before sft loads, and the plan against the
measured peak RSS of real runs of the embedded model (benchmarks/bench_plan.py's settings)."""
import importlib.util
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from swiftall.plan import (GIB, Setting, fits, given_machine, make_plan, model_spec, nearest_fit, recommend,
                           smallest_need)
from swiftall.plan.known import KNOWN
from swiftall.plan.memory import trainable_params
from swiftall.utils.errors import ModelNotFoundError

ROOT = Path(__file__).resolve().parent.parent
SMOL = "smollm2-135m-instruct"


def bench():
    spec = importlib.util.spec_from_file_location("bench_plan", ROOT / "benchmarks" / "bench_plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def component(plan, name):
    return next((c.bytes for c in plan.components if c.name == name), 0.0)


def test_the_stored_config_of_the_embedded_model_is_its_real_config(smol_dir):
    assert model_spec(SMOL) == model_spec(str(smol_dir)).__class__(
        **{**model_spec(str(smol_dir)).__dict__, "name": SMOL, "source": model_spec(SMOL).source})


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_stored_configs_add_up_to_the_size_in_the_model_name(name):
    size = re.search(r"(\d+(?:\.\d+)?)([mb])", name)
    if size is None:
        pytest.skip("no size in the name")
    named = float(size.group(1)) * (1e6 if size.group(2) == "m" else 1e9)
    ratio = model_spec(name).total_params / named
    low, high = (0.85, 1.35) if "omni" not in name else (1.0, 2.0)  # Omni's names count the thinker only
    assert low <= ratio <= high, f"{name}: {model_spec(name).total_params / 1e9:.2f}B"


def test_lora_trainable_parameters_match_peft_on_a_real_model(tiny_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_dir),
                           LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    real = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    spec = model_spec(str(tiny_dir))
    assert trainable_params(spec, Setting(train_type="lora", lora_rank=8)) == real
    assert spec.total_params == total


def test_kv_cache_matches_the_cache_transformers_builds(tiny_dir):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    batch, prompt, new = 3, 40, 24  # the engine's buffers hold prompt x 1.5 (60) < 64: no slack left at the end
    with torch.no_grad():
        out = model(torch.ones(batch, prompt + new, dtype=torch.long), use_cache=True)
    cache = out.past_key_values
    real = sum(layer.keys.numel() * layer.keys.element_size() + layer.values.numel() * layer.values.element_size()
               for layer in cache.layers)
    plan = make_plan(model_spec(str(tiny_dir)), Setting(task="infer", batch=batch, length=prompt, new_tokens=new))
    assert component(plan, "KV cache") == real


def test_components_follow_the_settings():
    spec = model_spec(SMOL)
    full = make_plan(spec, Setting(train_type="full", batch=4, length=512))
    lora = make_plan(spec, Setting(train_type="lora", batch=4, length=512))
    assert component(full, "gradients") == component(full, "weights")
    assert component(full, "optimizer states") == 2 * component(full, "weights")
    assert component(lora, "gradients") < 0.05 * component(full, "gradients")
    checkpointed = make_plan(spec, Setting(train_type="full", batch=4, length=512, checkpointing=True))
    assert component(checkpointed, "activations") < 0.25 * component(full, "activations")
    qlora = make_plan(spec, Setting(train_type="lora", quant_bits=4, batch=4, length=512))
    assert component(qlora, "weights") < 0.6 * component(lora, "weights")
    assert component(make_plan(spec, Setting(task="rlhf", train_type="full")), "reference model") > 0
    assert component(make_plan(spec, Setting(task="rlhf", train_type="lora")), "reference model") == 0
    zero3 = make_plan(spec, Setting(train_type="full", zero_stage=3, nproc=4))
    assert component(zero3, "weights") == component(full, "weights") / 4


def test_nearest_fit_fits_and_a_budget_that_fits_nothing_says_the_smallest_need():
    spec = model_spec("qwen2.5-7b-instruct")
    setting = Setting(train_type="full", device="cuda", dtype="bfloat16", length=2048)
    choice = nearest_fit(spec, setting, 24 * 1e9 / GIB)
    assert choice is not None and fits(choice.plan, 24 * 1e9 / GIB) and choice.reasons
    assert not fits(make_plan(spec, setting), 24 * 1e9 / GIB)
    done = subprocess.run([sys.executable, "-m", "swiftall", "plan", "sft", "--model", "qwen2.5-7b-instruct",
                           "--device", "cuda", "--memory_gb", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    least = smallest_need(spec, setting.with_(train_type="lora")).peak_gib
    assert "does NOT fit" in done.stdout and f"smallest need of this model is {least:.2f} GiB" in done.stdout


@pytest.mark.parametrize("device,gb", [("cuda", 8), ("cuda", 24), ("cuda", 80), ("cpu", 16)])
def test_recommendations_fit_their_machines(device, gb):
    machine = given_machine(device, gb)
    for name in ("smollm2-135m-instruct", "qwen2.5-1.5b-instruct", "llama3.2-3b-instruct", "qwen2.5-7b-instruct"):
        choice = recommend(model_spec(name), machine, task="sft")
        if choice is None:
            continue
        assert choice.plan.peak_gib <= machine.budget_gib, (name, choice.setting)
    seven = recommend(model_spec("qwen2.5-7b-instruct"), machine, task="sft")
    if gb == 24:
        assert seven is not None and seven.setting.train_type != "full"
    if gb == 80:
        assert recommend(model_spec(SMOL), machine).setting.train_type == "full"


def test_an_unknown_model_offline_names_the_id():
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-model"):
        model_spec("no-such-org/no-such-model")
    done = subprocess.run([sys.executable, "-m", "swiftall", "plan", "--model", "no-such-org/no-such-model"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "no-such-org/no-such-model" in done.stderr and "Traceback" not in done.stderr


def test_sft_warns_before_loading_when_the_plan_exceeds_free_memory(monkeypatch, caplog, smol_dir):
    from swiftall.config import SftConfig
    from swiftall.pipelines import plan as plan_pipeline

    monkeypatch.setattr(plan_pipeline, "machine_for", lambda *a, **k: given_machine("cpu", 3.0))
    logger = logging.getLogger("test_plan")
    cfg = SftConfig(model=SMOL, dataset=["swiftall-demo"], train_type="full", max_length=512,
                    per_device_train_batch_size=4)
    with caplog.at_level(logging.WARNING, logger="test_plan"):
        plan_pipeline.check_plan_before_loading(cfg, smol_dir, logger)
    assert "more than 90% of the 2.8 GiB free" in caplog.text and "nearest setting that fits" in caplog.text
    caplog.clear()
    cfg.no_plan_check = True
    plan_pipeline.check_plan_before_loading(cfg, smol_dir, logger)
    assert not caplog.text


CHEAP = ("full-b1-l128", "lora-b1-l512")  # held out of the fits (constants.py), and among the quickest


@pytest.mark.slow
@pytest.mark.parametrize("setting", [pytest.param(n, marks=[] if n in CHEAP else [pytest.mark.heavy])
                                     for n in bench().SETTINGS])
def test_plan_is_within_15_percent_of_the_measured_peak_rss(setting):
    module = bench()
    measured = module.measure(setting, steps=2)
    planned = module.planned(setting)["peak_gib"]
    error = (planned - measured["measured_gib"]) / measured["measured_gib"]
    print(json.dumps({"setting": setting, "plan_gib": round(planned, 3), "measured_gib": measured["measured_gib"]}))
    assert abs(error) <= 0.15, f"{setting}: plan {planned:.2f} GiB, measured {measured['measured_gib']:.2f} GiB"
