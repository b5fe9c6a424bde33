"""What a training run leaves behind, resume, and the output-dir rules (tiny random model, fast)."""
import json

import pytest

from swiftall import export_main, sft_main
from swiftall.utils.errors import ConfigError

ROWS = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": f"{w} {w}!"}]}
        for w in ["apple", "river", "stone", "cloud", "green", "quick", "silver", "table"]]


def base_config(tiny_dir, data, out, **extra):
    return {"model": str(tiny_dir), "dataset": [str(data)], "output_dir": str(out), "max_steps": 6,
            "per_device_train_batch_size": 2, "save_steps": 3, "logging_steps": 1, "learning_rate": 1e-3,
            "report_to": ["tensorboard"], **extra}


@pytest.fixture(scope="module")
def lora_run(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = root / "run"
    summary = sft_main(base_config(tiny_dir, data, out))
    return summary, out, data


def test_run_folder_holds_everything(lora_run):
    summary, out, _ = lora_run
    assert summary["global_step"] == 6 and summary["output_dir"] == str(out)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-3", "checkpoint-6"}
    args = json.loads((out / "args.json").read_text())
    assert args["command"] == "sft" and args["lora_rank"] == 8 and args["model_path"]
    records = [json.loads(line) for line in (out / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for key in ("loss", "learning_rate", "grad_norm", "tokens_per_second", "trained_tokens_per_second",
                "memory_peak_rss_gib"):
        assert key in steps[-1], key
    assert (out / "images" / "loss.png").stat().st_size > 1000
    assert (out / "images" / "learning_rate.png").is_file()
    assert list((out / "runs").rglob("events.out.tfevents.*"))


def test_non_empty_output_dir_is_refused(lora_run, tiny_dir):
    _, out, data = lora_run
    with pytest.raises(ConfigError, match="not empty.*--overwrite_output_dir"):
        sft_main(base_config(tiny_dir, data, out))


def test_resume_continues_at_the_same_step_and_learning_rate(lora_run, tiny_dir, tmp_path):
    _, out, data = lora_run
    original = {r["step"]: r for r in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "loss" in r}
    resumed_dir = tmp_path / "resumed"
    sft_main(base_config(tiny_dir, data, resumed_dir, resume_from_checkpoint=str(out / "checkpoint-3")))
    resumed = {r["step"]: r for r in map(json.loads, (resumed_dir / "logging.jsonl").read_text().splitlines())
               if "loss" in r}
    assert sorted(resumed) == [4, 5, 6]
    for step in (4, 5, 6):
        assert resumed[step]["learning_rate"] == pytest.approx(original[step]["learning_rate"])
        assert resumed[step]["loss"] == pytest.approx(original[step]["loss"], rel=1e-4)


def test_resume_accepts_the_run_folder(lora_run, tiny_dir, tmp_path):
    from swiftall.train.outputs import resolve_resume

    _, out, _ = lora_run
    assert resolve_resume(str(out)).name == "checkpoint-6"
    with pytest.raises(ConfigError, match="no checkpoint"):
        resolve_resume(str(tmp_path))


def test_full_fine_tune_saves_a_loadable_model(tiny_dir, tmp_path, write_jsonl):
    from transformers import AutoModelForCausalLM

    data = write_jsonl(ROWS)
    out = tmp_path / "full"
    summary = sft_main(base_config(tiny_dir, data, out, train_type="full", max_steps=2, save_steps=100))
    assert summary["global_step"] == 2
    assert not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2


def test_export_refuses_a_non_adapter_folder(tiny_dir):
    with pytest.raises(ConfigError, match="adapter_config.json"):
        export_main(["--adapters", str(tiny_dir), "--merge_lora", "true"])


def test_malformed_row_stops_before_training_with_file_and_line(tiny_dir, tmp_path, write_jsonl):
    from swiftall.utils.errors import DataError

    data = write_jsonl([json.dumps(ROWS[0]), '{"messages": [{"role": "user", "content": "hi"}', json.dumps(ROWS[1])])
    with pytest.raises(DataError, match=rf"{data}:2: invalid JSON"):
        sft_main(base_config(tiny_dir, data, tmp_path / "never"))
    assert not (tmp_path / "never" / "logging.jsonl").exists()


def test_padding_free_is_the_default_for_registered_text_families(lora_run):
    _, out, _ = lora_run
    args = json.loads((out / "args.json").read_text())  # the resolved config that ran
    assert args["padding_free"] is True and args["group_by_length"] is False


def test_two_runs_in_one_process_with_the_same_seed_train_the_same_adapter(lora_run, tiny_dir, tmp_path):
    # before the seed was set ahead of the tuner, a second in-process run started from other LoRA weights
    import torch
    from safetensors.torch import load_file

    _, out, data = lora_run
    torch.manual_seed(1234)   # whatever the process did before must not matter
    sft_main(base_config(tiny_dir, data, tmp_path / "again", report_to="none"))
    first, second = load_file(out / "adapter_model.safetensors"), load_file(tmp_path / "again" / "adapter_model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
