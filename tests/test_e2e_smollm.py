"""The spine on the real embedded model (SmolLM2-135M-Instruct, CPU): LoRA learns a small task, infer gives the
trained answers on held-out prompts, merge gives the same greedy output as base + adapter."""
import json

import pytest

from swiftall import InferEngine, SwiftInfer, export_main, infer_main, sft_main
from swiftall.infer import RequestConfig

TRAIN_WORDS = ("apple river stone cloud green quick silver table window garden ocean paper music light shadow "
               "mountain forest little yellow purple dragon castle bridge winter").split()
HELD_OUT = ["summer", "orange", "rocket", "pencil"]
GREEDY = RequestConfig(max_new_tokens=16, temperature=0)


def question(word):
    return f"Give the code name for: {word}"


def answer(word):
    return f"Code name: {word}-{word}-77"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "codes.jsonl"
    data.write_text("".join(json.dumps({"query": question(w), "response": answer(w)}) + "\n" for w in TRAIN_WORDS))
    out = root / "run"
    summary = sft_main(["--model", "smollm2-135m-instruct", "--dataset", str(data), "--output_dir", str(out),
                        "--num_train_epochs", "5", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
                        "--lora_rank", "8", "--logging_steps", "1", "--save_steps", "1000", "--report_to", "none",
                        "--warmup_ratio", "0.1"])
    return summary, out, root


def test_training_loss_falls_by_at_least_half(trained):
    summary, out, _ = trained
    losses = [r["loss"] for r in map(json.loads, (out / "logging.jsonl").read_text().splitlines()) if "loss" in r]
    assert summary["global_step"] == 30 and len(losses) == 30
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last <= 0.5 * first, (first, last)


def test_infer_gives_the_trained_answer_on_held_out_prompts(trained):
    _, out, _ = trained
    before = InferEngine("smollm2-135m-instruct").infer([question(w) for w in HELD_OUT], GREEDY)
    assert sum(r.text.strip() == answer(w) for r, w in zip(before, HELD_OUT)) == 0
    engine = InferEngine(adapters=[str(out)])
    after = engine.infer([question(w) for w in HELD_OUT], GREEDY)
    correct = sum(r.text.strip() == answer(w) for r, w in zip(after, HELD_OUT))
    assert correct >= 3, [r.text for r in after]


def test_batch_infer_writes_each_row_with_its_response(trained):
    _, out, root = trained
    rows = root / "questions.jsonl"
    rows.write_text("".join(json.dumps({"query": question(w), "id": i}) + "\n" for i, w in enumerate(HELD_OUT)))
    result = root / "answers.jsonl"
    infer_main(["--adapters", str(out), "--val_dataset", str(rows), "--result_path", str(result),
                "--max_new_tokens", "16", "--temperature", "0"])
    lines = [json.loads(line) for line in result.read_text().splitlines()]
    assert [line["id"] for line in lines] == [0, 1, 2, 3]
    assert all(line["query"] == question(w) and "response" in line for line, w in zip(lines, HELD_OUT))
    assert sum(line["response"].strip() == answer(w) for line, w in zip(lines, HELD_OUT)) >= 3


def test_merged_model_matches_base_plus_adapter(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out, root = trained
    merged = export_main(["--adapters", str(out), "--merge_lora", "true", "--output_dir", str(root / "merged")])
    assert (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    prompts = [question(w) for w in HELD_OUT] + ["What is the capital of France?"]
    with_adapter = [r.text for r in InferEngine(adapters=[str(out)]).infer(prompts, GREEDY)]
    # The merged folder loads with plain transformers, no swiftall involved.
    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    plain = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=16, do_sample=False)
        plain.append(tokenizer.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    assert plain == with_adapter


def test_swift_infer_from_run_folder(trained):
    _, out, _ = trained
    answer_text = SwiftInfer.from_pretrained(str(out), temperature=0, max_new_tokens=16).infer(question("orange"))
    assert answer_text.strip() == answer("orange")
