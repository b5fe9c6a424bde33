"""The built-in benchmarks: hub ids, splits, and how a hub row becomes an EvalItem.

Prompts follow the harnesses users compare against (lm-evaluation-harness for text, lmms-eval's short-answer
instructions for images); the prompt actually used is saved with every prediction."""
from __future__ import annotations

import ast
import random
import re
from typing import Any

from .benchmarks import Benchmark, register_benchmark
from .extract import LETTERS, extract_number
from .items import EvalItem

SHORT = "\nAnswer the question using a single word or phrase."


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _mcq(index: int, subset: str, question: str, choices: list[str], answer: int, **kw: Any) -> EvalItem:
    return EvalItem(str(kw.pop("id", index)), _user(question), [choices[answer]], list(choices), answer,
                    subset=subset, **kw)


def gsm8k(row: dict, i: int, subset: str) -> EvalItem:
    return EvalItem(str(i), _user(row["question"]), [extract_number(row["answer"]) or ""], subset=subset,
                    meta={"solution": row["answer"]})


def mmlu(row: dict, i: int, subset: str) -> EvalItem:
    return _mcq(i, row.get("subject") or subset, row["question"].strip(), row["choices"], int(row["answer"]))


def letter_columns(row: dict, i: int, subset: str) -> EvalItem:
    """C-Eval / CMMLU: Question or question, A-D columns, Answer or answer as a letter."""
    question = row.get("question", row.get("Question"))
    choices = [str(row[k]) for k in "ABCD" if k in row]
    answer = str(row.get("answer", row.get("Answer"))).strip()
    return _mcq(row.get("id", i), subset, question, choices, LETTERS.index(answer))


def arc(row: dict, i: int, subset: str) -> EvalItem:
    labels = list(row["choices"]["label"])
    return _mcq(i, subset, row["question"], list(row["choices"]["text"]), labels.index(row["answerKey"]),
                id=row.get("id", i))


def hellaswag(row: dict, i: int, subset: str) -> EvalItem:
    def clean(text: str) -> str:
        text = text.strip().replace(" [title]", ". ")
        return re.sub(r"\[.*?\]", "", text).replace("  ", " ")

    ctx = clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
    return _mcq(i, row.get("activity_label", subset), ctx, [clean(e) for e in row["endings"]], int(row["label"]))


def truthfulqa(row: dict, i: int, subset: str) -> EvalItem:
    """mc1: one true answer among the options; shuffled per item (seeded) so that generation cannot win by
    always answering A."""
    targets = row["mc1_targets"]
    order = list(range(len(targets["choices"])))
    random.Random(i).shuffle(order)
    choices = [targets["choices"][j] for j in order]
    answer = [targets["labels"][j] for j in order].index(1)
    return _mcq(i, subset, row["question"], choices, answer)


def ifeval(row: dict, i: int, subset: str) -> EvalItem:
    return EvalItem(str(row.get("key", i)), _user(row["prompt"]), [""], subset=subset,
                    meta={"instruction_id_list": list(row["instruction_id_list"]),
                          "kwargs": [dict(k or {}) for k in row["kwargs"]], "prompt": row["prompt"]})


def humaneval(row: dict, i: int, subset: str) -> EvalItem:
    question = ("Complete the following Python function. Answer with the whole function in one ```python code "
                f"block.\n\n```python\n{row['prompt']}```")
    return EvalItem(row["task_id"], _user(question), [row["canonical_solution"]], subset=subset,
                    meta={"prompt": row["prompt"], "test": row["test"], "entry_point": row["entry_point"]})


def _image_question(row: dict, i: int, subset: str, question: str, answers: Any, suffix: str = SHORT,
                    image_key: str = "image") -> EvalItem:
    refs = [str(a) for a in (answers if isinstance(answers, (list, tuple)) else [answers])]
    return EvalItem(str(row.get("question_id", i)), _user(f"<image>{question}{suffix}"), refs,
                    media={"images": [row[image_key]]}, subset=subset)


def textvqa(row: dict, i: int, subset: str) -> EvalItem:
    return _image_question(row, i, subset, row["question"], row["answers"])


def docvqa(row: dict, i: int, subset: str) -> EvalItem:
    return _image_question(row, i, subset, row["question"], row["answers"])


def chartqa(row: dict, i: int, subset: str) -> EvalItem:
    return _image_question(row, i, subset, row["query"], row["label"])


def pope(row: dict, i: int, subset: str) -> EvalItem:
    return _image_question(row, i, row.get("category") or subset, row["question"], [row["answer"]],
                           suffix=" Please answer yes or no.")


def coco_caption(row: dict, i: int, subset: str) -> EvalItem:
    return _image_question(row, i, subset, "Provide a one-sentence caption for the provided image.",
                           row.get("answer") or row.get("captions") or row.get("caption"), suffix="")


def mmmu(row: dict, i: int, subset: str) -> EvalItem:
    """Multiple choice with up to 7 images referenced as <image k> in the question; open questions keep their
    answer as text."""
    images, text = [], row["question"]
    for k in range(1, 8):
        if row.get(f"image_{k}") is not None and f"<image {k}>" in text:
            images.append(row[f"image_{k}"])
            text = text.replace(f"<image {k}>", "<image>")
    options = ast.literal_eval(row["options"]) if isinstance(row.get("options"), str) else row.get("options") or []
    meta_subset = row.get("subfield") or subset
    if options:
        listed = "\n".join(f"{LETTERS[j]}. {o}" for j, o in enumerate(options))
        question = f"{text}\n{listed}\nAnswer with the option's letter from the given choices directly."
        return EvalItem(str(row.get("id", i)), _user(question), [options[LETTERS.index(row["answer"])]],
                        list(options), LETTERS.index(row["answer"]), {"images": images}, meta_subset,
                        meta={"formatted": True})
    return EvalItem(str(row.get("id", i)), _user(text + SHORT), [str(row["answer"])], media={"images": images},
                    subset=meta_subset)


def librispeech(row: dict, i: int, subset: str) -> EvalItem:
    return EvalItem(str(row.get("id", i)), _user("<audio>Transcribe this audio."), [row["text"]],
                    media={"audios": [row["audio"]]}, subset=subset)


CEVAL_SUBJECTS = tuple(
    "computer_network operating_system computer_architecture college_programming college_physics college_chemistry "
    "advanced_mathematics probability_and_statistics discrete_mathematics electrical_engineer metrology_engineer "
    "high_school_mathematics high_school_physics high_school_chemistry high_school_biology middle_school_mathematics "
    "middle_school_biology middle_school_physics middle_school_chemistry veterinary_medicine college_economics "
    "business_administration marxism mao_zedong_thought education_science teacher_qualification high_school_politics "
    "high_school_geography middle_school_politics middle_school_geography modern_chinese_history "
    "ideological_and_moral_cultivation logic law chinese_language_and_literature art_studies professional_tour_guide "
    "legal_professional high_school_chinese high_school_history middle_school_history civil_servant sports_science "
    "plant_protection basic_medicine clinical_medicine urban_and_rural_planner accountant fire_engineer "
    "environmental_impact_assessment_engineer tax_accountant physician".split())
CMMLU_SUBJECTS = tuple(
    "agronomy anatomy ancient_chinese arts astronomy business_ethics chinese_civil_service_exam chinese_driving_rule "
    "chinese_food_culture chinese_foreign_policy chinese_history chinese_literature chinese_teacher_qualification "
    "clinical_knowledge college_actuarial_science college_education college_engineering_hydrology college_law "
    "college_mathematics college_medical_statistics college_medicine computer_science computer_security "
    "conceptual_physics construction_project_management economics education electrical_engineering "
    "elementary_chinese elementary_commonsense elementary_information_and_technology elementary_mathematics "
    "ethnology food_science genetics global_facts high_school_biology high_school_chemistry high_school_geography "
    "high_school_mathematics high_school_physics high_school_politics human_sexuality international_law journalism "
    "jurisprudence legal_and_moral_basis logical machine_learning management marketing marxist_theory "
    "modern_chinese nutrition philosophy professional_accounting professional_law professional_medicine "
    "professional_psychology public_relations security_study sociology sports_science traditional_chinese_medicine "
    "virology world_history world_religions".split())
MMMU_SUBJECTS = tuple(
    "Accounting Agriculture Architecture_and_Engineering Art Art_Theory Basic_Medical_Science Biology Chemistry "
    "Clinical_Medicine Computer_Science Design Diagnostics_and_Laboratory_Medicine Economics Electronics "
    "Energy_and_Power Finance Geography History Literature Manage Marketing Materials Math Mechanical_Engineering "
    "Music Pharmacy Physics Psychology Public_Health Sociology".split())

B = Benchmark
for _b in [
    B("gsm8k", "grade-school math word problems (numeric answer)", "math", gsm8k, "openai/gsm8k", "modelscope/gsm8k",
      ("main",), fewshot_split="train", lm_eval_task="gsm8k", evalscope_name="gsm8k",
      prompt_suffix="\nSolve it step by step, then give the final number after '####'."),
    B("mmlu", "57 subjects, 4-way multiple choice", "mcq", mmlu, "cais/mmlu", "modelscope/mmlu", ("all",),
      fewshot_split="dev", lm_eval_task="mmlu", evalscope_name="mmlu"),
    B("ceval", "Chinese exams, 52 subjects (validation split: test answers are hidden)", "mcq", letter_columns,
      "ceval/ceval-exam", "modelscope/ceval-exam", CEVAL_SUBJECTS, "val", "dev", lm_eval_task="ceval-valid",
      evalscope_name="ceval"),
    B("cmmlu", "Chinese MMLU, 67 subjects", "mcq", letter_columns, "haonan-li/cmmlu", "modelscope/cmmlu",
      CMMLU_SUBJECTS, "test", "dev", lm_eval_task="cmmlu", evalscope_name="cmmlu"),
    B("arc", "AI2 reasoning challenge (ARC-Challenge)", "mcq", arc, "allenai/ai2_arc", "modelscope/ai2_arc",
      ("ARC-Challenge",), fewshot_split="train", lm_eval_task="arc_challenge", evalscope_name="arc"),
    B("hellaswag", "commonsense sentence completion (validation split)", "mcq", hellaswag, "Rowan/hellaswag",
      "modelscope/hellaswag", (), "validation", "train", mc_style="completion", lm_eval_task="hellaswag",
      evalscope_name="hellaswag"),
    B("truthfulqa_mc", "TruthfulQA mc1 (one true answer)", "mcq", truthfulqa, "truthfulqa/truthful_qa",
      "modelscope/truthful_qa", ("multiple_choice",), "validation", lm_eval_task="truthfulqa_mc1",
      evalscope_name="truthful_qa"),
    B("ifeval", "verifiable instruction following (strict prompt/instruction accuracy)", "ifeval", ifeval,
      "google/IFEval", "opencompass/ifeval", (), "train", lm_eval_task="ifeval", evalscope_name="ifeval"),
    B("humaneval", "Python function completion, pass@1 (executes model code: opt in with allow_code_execution)",
      "code", humaneval, "openai/openai_humaneval", "modelscope/humaneval", (), "test",
      lm_eval_task="humaneval", evalscope_name="humaneval", needs_opt_in="allow_code_execution"),
    B("textvqa", "questions about text in images (VQA soft accuracy)", "vqa", textvqa, "lmms-lab/textvqa", None, (),
      "validation", modality="image"),
    B("coco_caption", "COCO captions (BLEU-1..4, ROUGE-L, CIDEr, METEOR with Java)", "caption", coco_caption,
      "lmms-lab/COCO-Caption", "modelscope/coco_2014_caption", (), "val", modality="image"),
    B("mmmu", "college-level multimodal questions, 30 subjects (validation split)", "mcq", mmmu, "MMMU/MMMU", None,
      MMMU_SUBJECTS, "validation", "dev", modality="image"),
    B("docvqa", "questions about document images (ANLS)", "vqa", docvqa, "lmms-lab/DocVQA", None, ("DocVQA",),
      "validation", metrics=("anls",), modality="image"),
    B("chartqa", "questions about charts (relaxed accuracy, 5% numeric tolerance)", "vqa", chartqa,
      "HuggingFaceM4/ChartQA", None, (), "test", metrics=("relaxed_acc",), modality="image"),
    B("pope", "object hallucination yes/no questions (accuracy, F1)", "yesno", pope, "lmms-lab/POPE", None, (),
      "test", modality="image"),
    B("librispeech", "English read speech, test-clean (WER)", "asr", librispeech, "openslr/librispeech_asr", None,
      ("clean",), "test", modality="audio"),
]:
    register_benchmark(_b)
