"""The built-in dataset catalog: bundled sets and well-known hub datasets with their ids, subsets and splits.

Hub entries download through `datasets` (Hugging Face) or `modelscope` when online; offline they fail with a
message naming the id and what to do. `columns` renames a dataset's fields into a format the converters know;
`preprocess` handles the few that need more (VQA, captions, speech).
"""
from __future__ import annotations

from typing import Any, Callable

from .registry import DatasetMeta, register_dataset


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) and value else value


def _media_pair(tag: str, field: str, media_col: str, prompt_col: str | None, answer_col: str,
                prompt: str = "") -> Callable[[dict], dict]:
    """Rows of (media, question, answer) -> canonical messages with the media tag in the question."""
    def convert(row: dict) -> dict:
        question = row.get(prompt_col, "") if prompt_col else prompt
        return {"messages": [{"role": "user", "content": f"{tag}{question or prompt}"},
                             {"role": "assistant", "content": str(_first(row.get(answer_col)) or "")}],
                field: [row.get(media_col)]}
    convert.__qualname__ = f"media_pair({media_col},{prompt_col},{answer_col})"
    return convert


M = DatasetMeta
CATALOG = [
    # ---- bundled: no network needed -------------------------------------------------------------------
    M("swiftall-demo", "small bundled SFT set (questions about swiftall)", builtin_file="demo.jsonl"),
    M("self-cognition", "who-are-you questions; fill in --model_name and --model_author",
      builtin_file="self_cognition.jsonl", hf_id="modelscope/self-cognition", ms_id="swift/self-cognition",
      needs_model_name=True, format="query-response"),
    M("preference-demo", "small bundled preference set (prompt/chosen/rejected)",
      builtin_file="preference_demo.jsonl", format="preference", task="rlhf"),
    # ---- instruction tuning (text) --------------------------------------------------------------------
    M("alpaca-gpt4-en", "52k GPT-4 answers to the Alpaca instructions", hf_id="vicgalle/alpaca-gpt4",
      ms_id="AI-ModelScope/alpaca-gpt4-data-en", format="alpaca"),
    M("alpaca-gpt4-zh", "Chinese GPT-4 answers to the Alpaca instructions", hf_id="llm-wizard/alpaca-gpt4-data-zh",
      ms_id="AI-ModelScope/alpaca-gpt4-data-zh", format="alpaca"),
    M("alpaca-cleaned", "the cleaned original Alpaca set", hf_id="yahma/alpaca-cleaned", format="alpaca"),
    M("code-alpaca-en", "20k code instructions", hf_id="sahil2801/CodeAlpaca-20k",
      ms_id="AI-ModelScope/CodeAlpaca-20k", format="alpaca"),
    M("dolly-15k", "Databricks' human-written instructions", hf_id="databricks/databricks-dolly-15k",
      ms_id="AI-ModelScope/databricks-dolly-15k", format="alpaca",
      columns={"context": "input", "response": "output", "category": "category"}),
    M("sharegpt-gpt4", "ShareGPT conversations with GPT-4", hf_id="shibing624/sharegpt_gpt4",
      ms_id="AI-ModelScope/sharegpt_gpt4", format="sharegpt"),
    M("ultrachat-200k", "200k filtered UltraChat dialogues", hf_id="HuggingFaceH4/ultrachat_200k",
      ms_id="AI-ModelScope/ultrachat_200k", split=("train_sft",)),
    M("no-robots", "10k human-written instructions and answers", hf_id="HuggingFaceH4/no_robots"),
    M("smoltalk", "SmolLM2's instruction mix", hf_id="HuggingFaceTB/smoltalk", subsets=("all",)),
    M("tulu-3-sft-mixture", "AllenAI's Tulu 3 SFT mix", hf_id="allenai/tulu-3-sft-mixture"),
    M("openhermes-2.5", "1M synthetic instructions", hf_id="teknium/OpenHermes-2.5", format="sharegpt"),
    M("slimorca", "deduplicated OpenOrca in ShareGPT form", hf_id="Open-Orca/SlimOrca", format="sharegpt"),
    M("openorca", "GPT-4/3.5 completions of FLAN tasks", hf_id="Open-Orca/OpenOrca", format="query-response",
      columns={"system_prompt": "system", "question": "query"}),
    M("magpie-pro-300k", "Magpie self-synthesized instructions", hf_id="Magpie-Align/Magpie-Pro-300K-Filtered",
      format="sharegpt"),
    M("metamathqa", "395k augmented math questions", hf_id="meta-math/MetaMathQA", format="query-response"),
    M("longalpaca-12k", "long-context instructions", hf_id="Yukang/LongAlpaca-12k",
      ms_id="AI-ModelScope/LongAlpaca-12k", format="alpaca"),
    M("firefly-zh", "1.1M Chinese instructions", hf_id="YeungNLP/firefly-train-1.1M",
      ms_id="AI-ModelScope/firefly-train-1.1M", format="query-response",
      columns={"input": "query", "target": "response"}),
    M("coig-cqia", "Chinese instructions from community Q&A", hf_id="m-a-p/COIG-CQIA",
      ms_id="AI-ModelScope/COIG-CQIA", format="alpaca", subsets=("zhihu",)),
    M("ruozhiba", "Chinese tricky questions", hf_id="LooksJuicy/ruozhiba", format="alpaca"),
    M("glaive-function-calling", "function calling in ShareGPT form with tools",
      hf_id="hiyouga/glaive-function-calling-v2-sharegpt", format="sharegpt"),
    # ---- math / reasoning (SFT or GRPO) ---------------------------------------------------------------
    M("gsm8k", "grade-school math word problems", hf_id="openai/gsm8k", ms_id="modelscope/gsm8k",
      subsets=("main",), format="query-response", columns={"question": "query", "answer": "response"}),
    M("numina-math-tir", "math problems with tool-integrated solutions (GRPO: 'solution' is passed through)",
      hf_id="AI-MO/NuminaMath-TIR", task="grpo", format="query-response", columns={"problem": "query",
                                                                                  "messages": "reference"}),
    # ---- continued pre-training -----------------------------------------------------------------------
    M("wikitext-2", "Wikipedia articles (plain text)", hf_id="Salesforce/wikitext", subsets=("wikitext-2-raw-v1",),
      format="text", task="pt"),
    M("fineweb-edu", "educational web text, 10B-token sample", hf_id="HuggingFaceFW/fineweb-edu",
      subsets=("sample-10BT",), format="text", task="pt"),
    M("tinystories", "short synthetic stories", hf_id="roneneldan/TinyStories", format="text", task="pt"),
    # ---- preference / KTO -----------------------------------------------------------------------------
    M("hh-rlhf", "Anthropic helpful/harmless preference transcripts", hf_id="Anthropic/hh-rlhf",
      ms_id="AI-ModelScope/hh-rlhf", format="hh", task="rlhf", split=("train", "test")),
    M("ultrafeedback", "UltraFeedback binarized preference pairs", hf_id="HuggingFaceH4/ultrafeedback_binarized",
      format="preference", task="rlhf", split=("train_prefs",)),
    M("orpo-dpo-mix-40k", "a mix of high-quality DPO pairs", hf_id="mlabonne/orpo-dpo-mix-40k",
      format="preference", task="rlhf"),
    M("orca-dpo-pairs", "Intel's Orca DPO pairs", hf_id="Intel/orca_dpo_pairs", format="preference", task="rlhf",
      columns={"question": "prompt"}),
    M("kto-mix-14k", "unpaired desirable/undesirable answers for KTO", hf_id="trl-lib/kto-mix-14k",
      format="kto", task="kto"),
    # ---- multimodal -----------------------------------------------------------------------------------
    M("coco-caption", "COCO 2014 image captions", ms_id="modelscope/coco_2014_caption",
      hf_id="lmms-lab/COCO-Caption", subsets=("coco_2014_caption",), task="mllm", format="caption",
      preprocess=_media_pair("<image>", "images", "image", None, "caption", "Describe this image.")),
    M("textvqa", "questions about text in images", hf_id="lmms-lab/textvqa", task="mllm", format="vqa",
      preprocess=_media_pair("<image>", "images", "image", "question", "answers")),
    M("vizwiz", "visual questions from blind people", hf_id="lmms-lab/VizWiz-VQA", task="mllm", format="vqa",
      split=("val",), preprocess=_media_pair("<image>", "images", "image", "question", "answers")),
    M("chartqa", "questions about charts", hf_id="HuggingFaceM4/ChartQA", task="mllm", format="vqa",
      preprocess=_media_pair("<image>", "images", "image", "query", "label")),
    M("docvqa", "questions about document images", hf_id="lmms-lab/DocVQA", subsets=("DocVQA",),
      split=("validation",), task="mllm", format="vqa",
      preprocess=_media_pair("<image>", "images", "image", "question", "answers")),
    M("latex-ocr-print", "printed formulas to LaTeX", hf_id="linxy/LaTeX_OCR", ms_id="AI-ModelScope/LaTeX_OCR",
      subsets=("full",), task="mllm", format="caption",
      preprocess=_media_pair("<image>", "images", "image", None, "text", "Write the LaTeX of this formula.")),
    M("llava-instruct-mix", "LLaVA instructions with images (messages + images)",
      hf_id="HuggingFaceH4/llava-instruct-mix-vsft", task="mllm"),
    M("librispeech-clean", "English read speech with transcripts", hf_id="openslr/librispeech_asr",
      subsets=("clean",), split=("train.100",), task="mllm", format="asr",
      preprocess=_media_pair("<audio>", "audios", "audio", None, "text", "Transcribe this audio.")),
    M("aishell1", "Mandarin speech with transcripts", ms_id="speech_asr/speech_asr_aishell1_trainsets",
      task="mllm", format="asr",
      preprocess=_media_pair("<audio>", "audios", "Audio:FILE", None, "Text:LABEL", "语音转文本")),
]

for _meta in CATALOG:
    register_dataset(_meta)
