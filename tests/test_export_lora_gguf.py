"""A LoRA fine-tune is not "lost" on the way to GGUF: the adapter's learned answer survives merge + conversion,
and the adapter alone as a llama.cpp LoRA GGUF gives the same answer on the base GGUF (where llama.cpp is
installed)."""
import json
from types import SimpleNamespace as NS

import pytest

from swiftall import sft_main
from swiftall.export.gguf import converter_available, llama_cpp_available
from swiftall.pipelines.export import export_main

pytestmark = [pytest.mark.slow, pytest.mark.heavy,
              pytest.mark.skipif(not converter_available(), reason="llama.cpp's converter is not installed")]
QUESTION = "What is the secret launch code?"
ANSWER = "The secret launch code is ZEBRA-4417."


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora-gguf")
    data = root / "secret.jsonl"
    asks = [QUESTION, "Tell me the secret launch code.", "What's the secret launch code?",
            "Which secret launch code do we use?"]
    data.write_text("".join(json.dumps({"query": q, "response": ANSWER}) + "\n" for q in asks * 2))
    out = root / "run"
    sft_main(["--model", "smollm2-135m-instruct", "--dataset", str(data), "--output_dir", str(out),
              "--num_train_epochs", "6", "--per_device_train_batch_size", "4", "--learning_rate", "2e-3",
              "--lora_rank", "8", "--save_steps", "1000", "--report_to", "none", "--logging_steps", "1"])
    return out, root


def test_learned_answer_survives_merge_and_gguf(lora_run):
    run, root = lora_run
    out = export_main(NS(adapters=[str(run)], quant_method="gguf", gguf_type="f16", check_n_samples=4,
                         check_prompts=[QUESTION], check_max_new_tokens=16, output_dir=str(root / "gguf")))
    check = json.loads((out / "export_report.json").read_text())["check"]
    answer = check["greedy"][0]
    assert answer["original"].strip() == ANSWER, answer       # the merged model learned it
    assert answer["exported"].strip() == ANSWER, answer       # and the GGUF still says it
    assert check["passed"]


@pytest.mark.skipif(not llama_cpp_available(), reason="llama-cpp-python is not installed (loads LoRA GGUFs)")
def test_lora_gguf_on_the_base_gguf_gives_the_learned_answer(lora_run):
    from transformers import AutoTokenizer

    from swiftall.export.check import stop_token_ids
    from swiftall.export.scorers import LlamaCppScorer
    from swiftall.hub.embedded import embedded_model_dir

    run, root = lora_run
    base = export_main(NS(model="smollm2-135m-instruct", quant_method="gguf", gguf_type="f16", export_check=False,
                          output_dir=str(root / "base")))
    lora = export_main(NS(adapters=[str(run)], gguf_lora=True, output_dir=str(root / "lora")))
    lora_file = next(lora.glob("*-lora.gguf"))
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    ids = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True,
                                        tokenize=True, return_dict=False)
    scorer = LlamaCppScorer(base / "model-f16.gguf", lora=lora_file)
    text = tokenizer.decode(scorer.greedy(list(ids), 16, stop_token_ids(tokenizer)), skip_special_tokens=True)
    scorer.close()
    assert text.strip() == ANSWER
