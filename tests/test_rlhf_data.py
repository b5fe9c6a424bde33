"""Alignment data and config: every accepted shape, file:line errors, flag checks (fast: tiny model)."""
from __future__ import annotations

import pytest

from swiftall.config import DpoConfig, RlhfConfig
from swiftall.utils.errors import ConfigError, DataError


def _template(tiny_dir, max_length=256):
    from swiftall.models import load_tokenizer, resolve_model
    from swiftall.templates import get_template

    info = resolve_model(str(tiny_dir))
    return get_template(load_tokenizer(info), info, max_length=max_length)


def _build(tiny_dir, path, kind, **flags):
    from swiftall.data.preference import build_align_data

    cfg = RlhfConfig(model=str(tiny_dir), dataset=[str(path)], **flags)
    return build_align_data(cfg, _template(tiny_dir, cfg.max_length), kind)


def test_prompt_chosen_rejected_and_messages_forms_agree(tiny_dir, write_jsonl):
    plain = write_jsonl([{"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away."}], "a.jsonl")
    msgs = write_jsonl([{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
                         "rejected_response": "Go away."}], "b.jsonl")
    a = _build(tiny_dir, plain, "pairs").train[0]
    b = _build(tiny_dir, msgs, "pairs").train[0]
    assert a == b
    assert a["prompt"] == [{"role": "user", "content": "Hi?"}]
    assert a["chosen"] == [{"role": "assistant", "content": "Hello!"}]
    assert a["rejected"] == [{"role": "assistant", "content": "Go away."}]


def test_images_shape_is_kept_and_text_model_refuses_it_by_line(tiny_dir, write_jsonl, tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "cat.png")
    row = {"prompt": "<image>What is this?", "chosen": "A red square.", "rejected": "A dog.", "images": ["cat.png"]}
    from swiftall.data.preference import pair_sample
    from swiftall.data.read import read_file

    path = write_jsonl([row], "img.jsonl")
    sample = pair_sample(next(read_file(path)))
    assert sample["images"] == [str(tmp_path / "cat.png")]  # resolved against the dataset's folder
    with pytest.raises(DataError, match=r"img\.jsonl:1: .*text-only"):
        _build(tiny_dir, path, "pairs")


def test_bad_rows_name_file_line_and_field(tiny_dir, write_jsonl):
    path = write_jsonl([{"prompt": "Hi?", "chosen": "Hello!", "rejected": "No."},
                        {"prompt": "Hi?", "chosen": "Hello!"}], "bad.jsonl")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: .*rejected"):
        _build(tiny_dir, path, "pairs")
    data = _build(tiny_dir, path, "pairs", strict=False)
    assert len(data.train) == 1 and sum(data.report.dropped.values()) == 1
    kto = write_jsonl([{"prompt": "Hi?", "completion": "Hello!", "label": "maybe"}], "kto.jsonl")
    with pytest.raises(DataError, match=r"kto\.jsonl:1: field 'label'"):
        _build(tiny_dir, kto, "kto")


def test_kto_and_grpo_rows(tiny_dir, write_jsonl):
    kto = write_jsonl([{"prompt": "Hi?", "completion": "Hello!", "label": True},
                       {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "No."}],
                        "label": 0}], "kto.jsonl")
    rows = _build(tiny_dir, kto, "kto").train
    assert [r["label"] for r in rows] == [True, False]
    assert rows[1]["completion"] == [{"role": "assistant", "content": "No."}]
    grpo = write_jsonl([{"prompt": "What is 2 + 3?", "solution": "5", "difficulty": 1}], "g.jsonl")
    row = _build(tiny_dir, grpo, "prompts").train[0]
    assert row["prompt"] == [{"role": "user", "content": "What is 2 + 3?"}]
    assert row["solution"] == "5" and row["difficulty"] == 1  # extra columns reach the reward functions


def test_too_long_rows_are_dropped_and_reported(tiny_dir, write_jsonl):
    path = write_jsonl([{"prompt": "Hi?", "chosen": "Hello!", "rejected": "No."},
                        {"prompt": "word " * 300, "chosen": "Hello!", "rejected": "No."}], "long.jsonl")
    data = _build(tiny_dir, path, "pairs", max_length=64)
    assert len(data.train) == 1 and "longer than --max_length" in data.report.dropped


def test_config_checks_name_the_flag():
    with pytest.raises(ConfigError, match="--reward_funcs"):
        RlhfConfig(model="m", dataset=["d"], rlhf_type="grpo")
    with pytest.raises(ConfigError, match="--loss_type bogus"):
        RlhfConfig(model="m", dataset=["d"], loss_type=["bogus"])
    with pytest.raises(ConfigError, match="--loss_weights"):
        RlhfConfig(model="m", dataset=["d"], loss_type=["sigmoid", "sft"], loss_weights=[1.0])
    with pytest.raises(ConfigError, match="--teacher_model"):
        RlhfConfig(model="m", dataset=["d"], rlhf_type="gkd")
    with pytest.raises(ConfigError, match="swiftall rlhf"):
        DpoConfig(model="m", dataset=["d"], rlhf_type="kto")
    assert RlhfConfig(model="m", dataset=["d"], rlhf_type="simpo").cpo_alpha == 0.0
    assert RlhfConfig(model="m", dataset=["d"], rlhf_type="simpo").beta == 2.0


def test_rpo_alpha_adds_the_nll_loss():
    from swiftall.train.rlhf.offline import dpo_losses

    cfg = RlhfConfig(model="m", dataset=["d"], loss_type=["sigmoid", "bco_pair"], rpo_alpha=0.5)
    assert dpo_losses(cfg) == (["sigmoid", "bco_pair", "sft"], [1.0, 1.0, 0.5])


def test_cli_unknown_rlhf_type_is_one_clean_line(capsys):
    from swiftall.cli.main import main

    assert main(["rlhf", "--rlhf_type", "dpp", "--model", "m", "--dataset", "d"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dpp" in err[0] and "dpo" in err[0]
