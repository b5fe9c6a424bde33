"""Evaluation during training: `sft --eval_dataset FILE --eval_steps K` scores the model being trained with the
native evaluator; the scores reach logging.jsonl, TensorBoard and the run's plots, each evaluation leaves a report
folder, and bad --eval_dataset values fail before the model loads. The learning check runs on the embedded model."""
import json

import pytest

from swiftall import sft_main
from swiftall.train.callbacks import read_log
from swiftall.utils.errors import ConfigError, DataError

WORDS = "apple river stone cloud green quick silver table".split()


def codes(write_jsonl):
    return write_jsonl([{"query": f"Give the code name for: {w}", "response": f"Code name: {w}-{w}-77", "id": w}
                        for w in WORDS], "codes.jsonl")


def train(model, data, out, *extra):
    return sft_main(["--model", str(model), "--dataset", str(data), "--output_dir", str(out), "--report_to",
                     "tensorboard", "--save_steps", "1000", "--logging_steps", "1", "--eval_dataset", str(data),
                     "--eval_generation_config", '{"max_tokens": 16}', *extra])


def tensorboard_tags(out):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (out / "runs").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_scores_reach_the_log_tensorboard_plots_and_report_folders(tiny_dir, write_jsonl, tmp_path):
    out = tmp_path / "run"
    train(tiny_dir, codes(write_jsonl), out, "--max_steps", "5", "--eval_steps", "2", "--eval_dataset_on_start",
          "true", "--per_device_train_batch_size", "2")
    scored = [r for r in read_log(out) if "eval_codes/exact_match" in r]
    assert [r["step"] for r in scored] == [0, 2, 4, 5]            # the start, every 2 steps, the last step
    assert all(0.0 <= r["eval_codes/exact_match"] <= 1.0 and "eval_codes/rougeL" in r for r in scored)
    assert {"eval/codes/exact_match", "eval/codes/rougeL"} <= tensorboard_tags(out)
    assert (out / "images" / "eval_codes_exact_match.png").stat().st_size > 1000
    report = json.loads((out / "eval" / "step-4" / "report.json").read_text())
    result = report["datasets"]["codes"]
    assert result["n"] == len(WORDS) and report["config"]["step"] == 4
    assert result["metrics"]["exact_match"]["value"] == scored[2]["eval_codes/exact_match"]
    lines = (out / "eval" / "step-4" / "predictions" / "codes.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == WORDS


def test_bad_eval_dataset_fails_before_the_model_loads(tiny_dir, write_jsonl, tmp_path):
    data = codes(write_jsonl)
    out = tmp_path / "run"
    with pytest.raises(DataError, match=r"did you mean gsm8k"):
        sft_main(["--model", str(tiny_dir), "--dataset", str(data), "--output_dir", str(out), "--eval_dataset",
                  "gsm8kk"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.jsonl is empty"):
        sft_main(["--model", str(tiny_dir), "--dataset", str(data), "--output_dir", str(out), "--eval_dataset",
                  str(empty)])
    with pytest.raises(ConfigError, match="--eval_use_evalscope true: give --eval_dataset"):
        sft_main(["--model", str(tiny_dir), "--dataset", str(data), "--output_dir", str(out),
                  "--eval_use_evalscope", "true"])
    assert not out.exists()


@pytest.mark.slow
def test_embedded_model_scores_rise_during_training(smol_dir, write_jsonl, tmp_path):
    """SmolLM2-135M learns made-up code names: exact match at the last evaluation is far above the start's."""
    out = tmp_path / "run"
    train("smollm2-135m-instruct", codes(write_jsonl), out, "--num_train_epochs", "5", "--eval_steps", "5",
          "--eval_dataset_on_start", "true", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
          "--lora_rank", "8", "--warmup_ratio", "0.1")
    scored = {r["step"]: r["eval_codes/exact_match"] for r in read_log(out) if "eval_codes/exact_match" in r}
    assert sorted(scored) == [0, 5, 10]
    start = json.loads((out / "eval" / "step-0" / "report.json").read_text())["datasets"]["codes"]["metrics"]
    end = json.loads((out / "eval" / "step-10" / "report.json").read_text())["datasets"]["codes"]["metrics"]
    assert scored[0] == start["exact_match"]["value"] <= 0.125 and scored[10] >= 0.75, scored
    assert end["exact_match"]["ci95"][0] > start["exact_match"]["ci95"][1]
