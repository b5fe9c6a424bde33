"""Encoding equals the tokenizer's own chat template; loss only on assistant turns."""
import pytest

from swiftall.templates import IGNORE, Template, TooLongError

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"},
     {"role": "assistant", "content": "6, of course."}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
     {"role": "assistant", "content": "d e f"}],
]


@pytest.fixture(scope="module")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_ids_equal_apply_chat_template(tokenizer, messages):
    encoded = Template(tokenizer).encode(messages)
    assert encoded.input_ids == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_labels_cover_exactly_the_assistant_turns(tokenizer, messages):
    encoded = Template(tokenizer).encode(messages)
    trained = tokenizer.decode([t for t, l in zip(encoded.input_ids, encoded.labels) if l != IGNORE])
    expected = "".join(m["content"] + "<|im_end|>\n" for m in messages if m["role"] == "assistant")
    assert trained == expected
    assert all(l in (IGNORE, t) for t, l in zip(encoded.input_ids, encoded.labels))


def test_prompt_encoding_is_the_training_prefix(tokenizer):
    messages = CONVERSATIONS[1]
    template = Template(tokenizer)
    prompt = template.encode_prompt(messages[:-1])
    full = template.encode(messages).input_ids
    assert full[: len(prompt)] == prompt


def test_system_option_fills_rows_without_one(tokenizer):
    template = Template(tokenizer, system="You are Swifty.")
    text = template.render(CONVERSATIONS[0])
    assert "You are Swifty." in text and "SmolLM" not in text
    assert "Be brief." in template.render(CONVERSATIONS[1])  # a row's own system wins


@pytest.mark.parametrize("strategy", ["left", "right"])
def test_truncation_cuts_to_max_length(tokenizer, strategy):
    template = Template(tokenizer, max_length=20, truncation_strategy=strategy)
    encoded = template.encode(CONVERSATIONS[1])
    assert len(encoded) == 20 and encoded.extra["truncated_from"] > 20
    full = Template(tokenizer).encode(CONVERSATIONS[1]).input_ids
    assert encoded.input_ids == (full[-20:] if strategy == "left" else full[:20])


@pytest.mark.parametrize("strategy", ["delete", "error"])
def test_delete_and_error_raise_too_long(tokenizer, strategy):
    with pytest.raises(TooLongError, match="longer than --max_length 20"):
        Template(tokenizer, max_length=20, truncation_strategy=strategy).encode(CONVERSATIONS[1])


def test_text_template_refuses_media(tokenizer):
    from swiftall.templates import TemplateError

    with pytest.raises(TemplateError, match="text-only"):
        Template(tokenizer).encode(CONVERSATIONS[0], media={"images": ["a.png"]})
