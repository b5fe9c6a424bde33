"""Evaluation on the real embedded model (SmolLM2-135M-Instruct, CPU): a LoRA adapter trained on a memorisation
task scores higher than the base with non-overlapping 95% intervals; the same run against `swiftall deploy`
(--eval_url) gives the same scores; `eval diff` lists the flipped items; and lm-evaluation-harness gives the
native backend's accuracy on a local multiple-choice set."""
import json
import random

import pytest

from swiftall import sft_main
from swiftall.pipelines.eval import eval_main

pytestmark = [pytest.mark.slow, pytest.mark.heavy]

WORDS = ("apple river stone cloud green quick silver table window garden ocean paper music light shadow "
         "mountain forest little yellow purple dragon castle bridge winter").split()
GEN = {"max_tokens": 16, "temperature": 0}


def rows():
    return [{"query": f"Give the code name for: {w}", "response": f"Code name: {w}-{w}-77", "id": w} for w in WORDS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-e2e")
    data = root / "codes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    out = root / "run"
    sft_main(["--model", "smollm2-135m-instruct", "--dataset", str(data), "--output_dir", str(out),
              "--num_train_epochs", "5", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
              "--lora_rank", "8", "--logging_steps", "5", "--save_steps", "1000", "--report_to", "none",
              "--warmup_ratio", "0.1"])
    return out, data, root


def evaluate(root, **kw):
    return eval_main({"eval_output_dir": str(root / "eval_output"), "eval_generation_config": GEN,
                      "eval_progress": False, **kw})


@pytest.fixture(scope="module")
def runs(trained):
    out, data, root = trained
    base = evaluate(root, model="smollm2-135m-instruct", eval_dataset=[str(data)])
    tuned = evaluate(root, adapters=[str(out)], eval_dataset=[str(data)])
    return base, tuned


def test_adapter_rise_with_non_overlapping_intervals(runs):
    base, tuned = (r["datasets"]["codes"]["metrics"]["exact_match"] for r in runs)
    assert base["n"] == tuned["n"] == len(WORDS)
    assert base["value"] <= 0.1 and tuned["value"] >= 0.8, (base, tuned)
    assert tuned["ci95"][0] > base["ci95"][1], (base["ci95"], tuned["ci95"])


def test_diff_names_the_flipped_items(runs):
    from swiftall.eval.diff import eval_diff

    base, tuned = runs
    d = eval_diff(base["run_dir"], tuned["run_dir"])["datasets"]["codes"]
    assert d["better"] >= 0.7 * len(WORDS) and d["worse"] == 0
    assert d["change"]["ci95"][0] > 0.5


def test_same_scores_through_deploy(trained, runs):
    from swiftall.pipelines.deploy import build_app, prepare_deploy_config
    from swiftall.serve.server import ServerThread

    out, data, root = trained
    app, engine = build_app(prepare_deploy_config({"adapters": [str(out)], "served_model_name": "smol",
                                                   "max_new_tokens": 16}))
    with ServerThread(app) as server:
        remote = evaluate(root, eval_url=server.url + "/v1", eval_dataset=[str(data)])
    engine.close()
    local, served = runs[1]["datasets"]["codes"], remote["datasets"]["codes"]
    assert served["metrics"]["exact_match"] == local["metrics"]["exact_match"]
    assert served["data_hash"] == local["data_hash"]


def test_lm_eval_backend_matches_native_on_multiple_choice(tmp_path):
    pytest.importorskip("lm_eval")
    rng, items = random.Random(0), []
    for _ in range(40):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        choices = [str(a + b), str(a + b + 1), str(a + b - 1), str(a + b + 10)]
        rng.shuffle(choices)
        items.append({"question": f"What is {a} + {b}?", "choices": choices, "answer": choices.index(str(a + b))})
    data = tmp_path / "arith.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in items))
    native = evaluate(tmp_path, model="smollm2-135m-instruct", eval_dataset=[str(data)])
    harness = evaluate(tmp_path, model="smollm2-135m-instruct", eval_dataset=[str(data)], eval_backend="lm_eval")
    a, b = native["datasets"]["arith"]["metrics"], harness["datasets"]["arith"]["metrics"]
    assert abs(a["acc"]["value"] - b["acc"]["value"]) <= 0.01 and a["acc"]["n"] == b["acc"]["n"] == 40
    assert abs(a["acc_norm"]["value"] - b["acc_norm"]["value"]) <= 0.01
