"""Metrics against the libraries' published values (and the benchmarks' official formulas), answer extraction and
confidence intervals. No model, no network."""
import math

import pytest

from swiftall.eval.extract import extract_choice, extract_number, extract_yes_no, normalize, strip_think
from swiftall.eval.metrics import (anls, cider, corpus_metric, exact_match, relaxed_accuracy, rouge_item_scorer,
                                   sacre_bleu, vqa_accuracy, word_error_rate)
from swiftall.eval.stats import bootstrap, mean, mean_ci, paired_difference, wilson


def test_sacrebleu_readme_example_scores_48_53():
    """sacrebleu's README: BLEU = 48.53 for these three sentences and two reference streams."""
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    refs = [["The dog bit the man.", "The dog had bit the man."], ["It was not unexpected.", "No one was surprised."],
            ["The man bit him first.", "The man had bitten the dog."]]
    assert sacre_bleu(hyps, refs)[0] == pytest.approx(48.53, abs=0.005)


def test_rouge_score_matches_the_definition():
    """rouge-score's README pair: 6 shared unigrams of 8 predicted and 9 reference tokens -> F1 = 12/17."""
    scores = rouge_item_scorer()("The quick brown dog jumps on the log.", ["The quick brown fox jumps over the lazy dog"])
    assert scores["rouge1"] == pytest.approx(2 * 0.75 * (6 / 9) / (0.75 + 6 / 9))
    assert scores["rougeL"] == pytest.approx(2 * (5 / 8) * (5 / 9) / (5 / 8 + 5 / 9))


def test_jiwer_readme_example():
    assert word_error_rate(["hello duck"], [["hello world"]])[0] == pytest.approx(0.5)
    assert word_error_rate(["a b c", "x"], [["a b d"], ["x y"]])[0] == pytest.approx(2 / 5)  # corpus, not mean


def test_vqa_accuracy_is_the_official_leave_one_out_soft_score():
    assert vqa_accuracy("yes", ["yes"] * 3 + ["no"] * 7) == pytest.approx(0.9)   # 3 of 10 annotators
    assert vqa_accuracy("yes", ["yes"] + ["no"] * 9) == pytest.approx(0.3)
    assert vqa_accuracy("Two", ["2"] * 4 + ["3"] * 6) == pytest.approx(1.0)       # numbers and case normalised
    assert vqa_accuracy("cat", ["dog"] * 10) == 0.0


def test_cider_of_perfect_captions_is_10_and_bleu4_is_1():
    preds = ["a cat sits on the mat", "a red bus drives down the street"]
    refs = [[preds[0]] * 3, [preds[1]] * 3]
    score, items = cider(preds, refs)
    assert score == pytest.approx(10.0) and items == pytest.approx([10.0, 10.0])
    assert corpus_metric("bleu4").compute(preds, refs)[0] == pytest.approx(1.0, abs=1e-6)
    assert cider(["a dog", "a dog"], refs)[0] < 1.0


def test_anls_relaxed_accuracy_and_exact_match():
    assert anls("hallo", ["hello"]) == pytest.approx(0.8)
    assert anls("something else", ["hello"]) == 0.0
    assert relaxed_accuracy("104", ["100"]) == 1.0 and relaxed_accuracy("106", ["100"]) == 0.0
    assert relaxed_accuracy("Yes", ["yes"]) == 1.0
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0 and exact_match("Paris", ["London"]) == 0.0


def test_extraction():
    assert strip_think("<think>let me see... B?</think> The answer is C") == "The answer is C"
    assert strip_think("reasoning here</think>42") == "42"
    assert extract_number("so 3+4=7.\n#### 1,234") == "1234"
    assert extract_number("The final answer is \\boxed{42}.") == "42"
    assert extract_number("I think the answer is 7.5 dollars, not 8") == "7.5"
    assert extract_number("no digits") is None
    choices = ["London", "Paris", "Rome", "Berlin"]
    assert extract_choice("(B)", choices) == 1
    assert extract_choice("Answer: C", choices) == 2
    assert extract_choice("D. Berlin", choices) == 3
    assert extract_choice("It is Paris, of course.", choices) == 1
    assert extract_choice("I do not know", choices) is None
    assert extract_yes_no("Yes, there is a dog.") == "yes" and extract_yes_no("No.") == "no"
    assert normalize("The  Cat, a dog!") == "cat dog"


def test_intervals():
    lo, hi = wilson(0, 24)
    assert lo == 0.0 and 0.13 < hi < 0.15            # honest at 0%: not [0, 0]
    lo, hi = wilson(12, 24)
    assert lo == pytest.approx(1 - hi)
    (lo, hi), method = mean_ci([0.2, 0.4, 0.6, 0.8] * 5, seed=1)
    assert method == "bootstrap" and lo < 0.5 < hi
    assert bootstrap([1.0, 2.0, 3.0], mean, seed=3) == bootstrap([1.0, 2.0, 3.0], mean, seed=3)
    change = paired_difference([0, 0, 0, 0, 1] * 4, [1, 1, 1, 0, 1] * 4)
    assert change["value"] == pytest.approx(0.6) and change["ci95"][0] > 0
    assert math.isnan(wilson(0, 0)[0])


def test_contains_needs_the_reference_as_whole_words():
    from swiftall.eval.metrics import contains

    assert contains("Hello! My name is Swifty.", ["swifty"]) == 1.0
    assert contains("I am Swiftyish", ["Swifty"]) == 0.0 and contains("", ["Swifty"]) == 0.0
    assert contains("Run swiftall export --adapters DIR --merge_lora true.", ["--merge_lora true"]) == 1.0
    assert contains("I was trained by the swiftall team", ["OpenAI", "swiftall team"]) == 1.0


def test_the_metric_libraries_a_run_needs_are_imported_before_the_model_loads(monkeypatch):
    import importlib
    from types import SimpleNamespace

    from swiftall.eval.scoring import import_metric_libraries
    from swiftall.utils.errors import MissingDependencyError

    assert import_metric_libraries([SimpleNamespace(eval_type="mcq", benchmark=None, options={})]) == []
    qa = SimpleNamespace(eval_type="qa", benchmark=None, options={})
    assert import_metric_libraries([qa]) == ["rouge_score.rouge_scorer", "sacrebleu"]
    real = importlib.import_module

    def missing(name, *args):
        if name == "sacrebleu":
            raise ImportError("No module named 'sacrebleu'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(MissingDependencyError, match=r"'sacrebleu' is needed for BLEU.*swiftall\[eval\]"):
        import_metric_libraries([qa])
