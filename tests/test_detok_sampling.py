"""Incremental detokenizing (same text as one whole decode, in time linear in the answer's length) and seeded
sampling (generators on the logits' device, the same draws for the same seed)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from swiftall.infer.detok import Answer, IncrementalDecoder  # noqa: E402
from swiftall.infer.engine import RequestConfig  # noqa: E402
from swiftall.infer.sampling import choose_tokens, resolve_params  # noqa: E402

TEXTS = ["Hello wörld! Ünïcödé — ça va? ß∂ƒ©",
         "你好，世界。日本語のテキストと한국어 문장도 있어요.",
         "Emoji: 🙂👍🏽 🧑‍🚀 🇫🇷 family 👨‍👩‍👧‍👦 done.",
         "Mixed 数字 123 and 🎉 at the end 🎉"]


@pytest.fixture(scope="module")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


class SlowTokenizer:
    """A tokenizer seen as a slow one (no tokenizers backend): the decoder falls back to windows. Counts the ids
    each decode call is given."""

    is_fast = False

    def __init__(self, inner):
        self.inner, self.sizes = inner, []

    def decode(self, ids, skip_special_tokens=False):
        self.sizes.append(len(ids))
        return self.inner.decode(ids, skip_special_tokens=skip_special_tokens)


class Done:
    finish_reason = "length"


def stream(tokenizer, ids, stop=(), eos=frozenset()):
    events = []
    answer = Answer(tokenizer, 0, list(stop), set(eos), emit=events.append)
    for token in ids:
        if answer.on_token(None, token, None, []):
            break
    answer.on_finish(Done, None)
    return answer, "".join(e.text for e in events)


@pytest.mark.parametrize("slow", [False, True], ids=["DecodeStream", "window-fallback"])
def test_streamed_text_equals_one_whole_decode(tokenizer, slow):
    tok = SlowTokenizer(tokenizer) if slow else tokenizer
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) > len(text) // 4  # multibyte characters take several byte-level tokens
        answer, streamed = stream(tok, ids)
        whole = tokenizer.decode(ids, skip_special_tokens=True)
        assert answer.text == streamed == whole == text


@pytest.mark.parametrize("slow", [False, True], ids=["DecodeStream", "window-fallback"])
def test_partial_characters_special_tokens_and_stop_strings(tokenizer, slow):
    tok = SlowTokenizer(tokenizer) if slow else tokenizer
    emoji = tokenizer("🧑‍🚀", add_special_tokens=False)["input_ids"]
    assert len(emoji) > 2
    special = tokenizer.convert_tokens_to_ids("<|im_start|>")
    ids = tokenizer("abc 你好", add_special_tokens=False)["input_ids"] + [special] + emoji[:-1]  # ends mid-character
    answer, streamed = stream(tok, ids)
    assert answer.text == streamed == tokenizer.decode(ids, skip_special_tokens=True)
    assert answer.text.endswith("\ufffd")  # what a whole decode shows for the cut character, and only at the end
    text = TEXTS[2] + " and more words after it"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer, streamed = stream(tok, ids, stop=["👍🏽 🧑"])
    assert answer.text == streamed == text[: text.index("👍🏽 🧑")] and answer.stopped_by_string


def test_decoding_work_per_token_does_not_grow_with_the_answer(tokenizer):
    """Linear time, counted rather than timed: the fast path never decodes the answer so far (only single tokens,
    for log-probabilities), and the fallback decodes windows of a few tokens however long the answer is."""
    ids = tokenizer(" ".join(TEXTS) * 20, add_special_tokens=False)["input_ids"]
    assert len(ids) > 1000
    slow = SlowTokenizer(tokenizer)
    answer, _ = stream(slow, ids)
    assert answer.text == tokenizer.decode(ids)
    assert max(slow.sizes) <= 16 and sum(slow.sizes) < 8 * len(ids)

    class Counting(SlowTokenizer):
        is_fast = True
        clean_up_tokenization_spaces = False
        backend_tokenizer = tokenizer.backend_tokenizer

    fast = Counting(tokenizer)
    answer, _ = stream(fast, ids)
    assert answer.text == tokenizer.decode(ids) and not fast.sizes


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
def test_seeded_sampling_uses_a_generator_on_the_logits_device(device):
    """On the CPU here (no GPU in this test run, so the CUDA case is skipped): the generator is made on the device of
    the logits (multinomial refuses one on another device), and a seed gives the same draws every time."""
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0)).to(device)

    def draws(seed, penalty=1.3):
        cfg = RequestConfig(temperature=1.0, top_p=0.9, top_k=20, repetition_penalty=penalty)
        params = [resolve_params(cfg, None, seed + i) for i in range(3)]
        for p in params:
            p.history = [1, 2, 3]
        rows = [[t for t, _, _ in choose_tokens(logits, params)] for _ in range(12)]
        assert all(p.generator.device == logits.device for p in params)
        return rows

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    unseeded = resolve_params(RequestConfig(temperature=1.0), None, None)
    choose_tokens(logits, [unseeded] * 3)
    assert unseeded.generator is None  # no seed: torch's own generator
