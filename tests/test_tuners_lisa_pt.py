"""LISA through sft on a tiny random llama: only K layers get gradients at each step, and the chosen layers change
every S steps. `swiftall pt` on a tiny .txt corpus: packed by default, loss on every token, perplexity falls."""
import json
import math

import pytest
from transformers import TrainerCallback

from swiftall import sft_main
from swiftall.pipelines import pt as pt_pipeline
from swiftall.pipelines import sft as sft_pipeline
from swiftall.pipelines.pt import pt_main
from swiftall.tuners.lisa import LisaCallback

pytestmark = pytest.mark.slow   # each runs sft's whole pipeline (about 20 s on an idle 2-core CPU)
LAYERS, K, S, STEPS = 4, 1, 2, 6


@pytest.fixture(scope="module")
def tiny4(tmp_path_factory, tiny_dir):
    """conftest's tiny random llama (SmolLM2's tokenizer), with 4 layers."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(tiny_dir)
    config.num_hidden_layers = LAYERS
    out = tmp_path_factory.mktemp("tiny4")
    LlamaForCausalLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(out)
    return out


class GradRecorder(TrainerCallback):
    """Which decoder layers hold gradients just before each optimizer step."""

    def __init__(self, model):
        self.layers = model.model.layers
        self.steps = []

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.steps.append((state.global_step, [i for i, layer in enumerate(self.layers)
                                               if any(p.grad is not None for p in layer.parameters())]))


def capture_trainer(monkeypatch, module, hook):
    real = module.build_trainer

    def build(model, *args, **kwargs):
        trainer = real(model, *args, **kwargs)
        hook(model, trainer, args)
        return trainer

    monkeypatch.setattr(module, "build_trainer", build)


def test_lisa_trains_k_layers_switched_every_s_steps(tiny4, write_jsonl, tmp_path, monkeypatch):
    data = write_jsonl([{"query": f"q{i}", "response": f"answer {i}"} for i in range(8)])
    seen = {}

    def hook(model, trainer, args):
        seen["recorder"] = GradRecorder(model)
        trainer.add_callback(seen["recorder"])
        seen["lisa"] = next(c for c in trainer.callback_handler.callbacks if isinstance(c, LisaCallback))

    capture_trainer(monkeypatch, sft_pipeline, hook)
    sft_main(["--model", str(tiny4), "--dataset", str(data), "--train_type", "lisa", "--lisa_activated_layers",
              str(K), "--lisa_step_interval", str(S), "--max_steps", str(STEPS), "--per_device_train_batch_size", "2",
              "--output_dir", str(tmp_path / "run"), "--report_to", "none", "--save_steps", "100"])
    history, steps = seen["lisa"].history, seen["recorder"].steps
    assert [step for step, _ in history] == list(range(0, STEPS, S))
    assert len(steps) == STEPS
    for step, with_grad in steps:
        active = [layers for start, layers in history if start <= step][-1]
        assert with_grad == active and len(with_grad) == K, (step, with_grad, active)
    assert len({tuple(layers) for _, layers in history}) > 1   # the draw moves across layers
    assert (tmp_path / "run" / "config.json").is_file()        # full training: a plain model folder


def test_pt_on_a_txt_corpus_packs_by_default_and_perplexity_falls(tiny4, tmp_path, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the quick brown fox jumps over the lazy dog"] * 6 + [""] +
                                ["a stitch in time saves nine"] * 6) + "\n")
    seen = {}
    capture_trainer(monkeypatch, sft_pipeline, lambda model, trainer, args: seen.update(rows=args[2]))
    assert pt_pipeline.sft_main is sft_pipeline.sft_main
    summary = pt_main(["--model", str(tiny4), "--dataset", str(corpus), "--train_type", "full", "--max_length", "64",
                       "--max_steps", "12", "--learning_rate", "3e-3", "--logging_steps", "1", "--output_dir",
                       str(tmp_path / "run"), "--report_to", "none", "--save_steps", "100"])
    rows = seen["rows"]
    assert len(rows) < 12 and sum(len(r["input_ids"]) for r in rows) > 64   # 12 lines packed into fewer rows
    assert all(label == token for r in rows for label, token in zip(r["labels"], r["input_ids"]))  # every token
    losses = [r["loss"] for r in map(json.loads, (tmp_path / "run" / "logging.jsonl").read_text().splitlines())
              if "loss" in r]
    assert math.exp(losses[-1]) < 0.5 * math.exp(losses[0]), losses
    assert json.loads((tmp_path / "run" / "args.json").read_text())["packing"] is True
    assert summary["global_step"] == 12


def test_sft_points_text_rows_to_pt(tiny4, write_jsonl, tmp_path):
    from swiftall.utils.errors import DataError

    data = write_jsonl([{"text": "just some text"}])
    with pytest.raises(DataError, match="swiftall pt"):
        sft_main(["--model", str(tiny4), "--dataset", str(data), "--output_dir", str(tmp_path / "run")])


@pytest.mark.parametrize("flags,check", [
    (["--train_type", "full", "--use_galore", "true", "--galore_rank", "8", "--galore_update_proj_gap", "2"], "galore"),
    (["--train_type", "lora", "--lorap_lr_ratio", "16"], "loraplus"),
])
def test_galore_and_lora_plus_reach_the_optimizer(flags, check, tiny4, write_jsonl, tmp_path, monkeypatch):
    if check == "galore":
        pytest.importorskip("galore_torch")
    data = write_jsonl([{"query": f"q{i}", "response": f"answer {i}"} for i in range(4)])
    seen = {}
    capture_trainer(monkeypatch, sft_pipeline, lambda model, trainer, args: seen.update(trainer=trainer))
    summary = sft_main(["--model", str(tiny4), "--dataset", str(data), "--max_steps", "3", "--learning_rate", "1e-3",
                        "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "run"), "--report_to",
                        "none", "--save_steps", "100", *flags])
    optimizer = seen["trainer"].optimizer
    optimizer = getattr(optimizer, "optimizer", optimizer)   # accelerate's wrapper
    if check == "galore":
        from galore_torch import GaLoreAdamW

        assert isinstance(optimizer, GaLoreAdamW)
        projected = [g for g in optimizer.param_groups if g.get("rank") == 8]
        assert projected and sum(p.numel() for g in projected for p in g["params"]) > 0
    else:
        rates = {g["lr"] for g in optimizer.param_groups if g["params"]}
        assert max(rates) == pytest.approx(16 * min(rates))   # B matrices at 16x the A matrices' rate
    assert summary["global_step"] == 3
