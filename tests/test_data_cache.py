"""Encoding: the Arrow cache (reused only when tokenizer, template, max_length and data are unchanged), parallel
and streaming encoding give the same rows, lazy tokenization, `swiftall prepare`, `sft --dataset DIR` and
`swiftall template show`."""
import json
import os

import pytest

from swiftall.cli.main import main
from swiftall.config import SftConfig
from swiftall.data import build_datasets
from swiftall.templates import IGNORE


@pytest.fixture(scope="module")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


def template(tokenizer, max_length=128, strategy="delete"):
    from swiftall.templates import get_template

    return get_template(tokenizer, max_length=max_length, truncation_strategy=strategy)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Question number {i}?"},
                          {"role": "assistant", "content": f"Answer {i}. " * (1 + i % 4)}]} for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build(tokenizer, data, cache, max_length=128, **extra):
    cfg = SftConfig.from_any({"model": "m", "dataset": [str(data)], "max_length": max_length,
                              "dataset_cache_dir": str(cache), **extra})
    return build_datasets(cfg, template(tokenizer, max_length))


def rows(dataset):
    return [(dataset[i]["input_ids"], dataset[i]["labels"], dataset[i]["source"]) for i in range(len(dataset))]


def test_cache_is_reused_only_when_nothing_changed(tokenizer, data, tmp_path):
    cache = tmp_path / "cache"
    first = build(tokenizer, data, cache)
    assert not first.from_cache and first.cache_dir.parent == cache and len(first.train) == 24
    again = build(tokenizer, data, cache)
    assert again.from_cache and again.cache_dir == first.cache_dir and rows(again.train) == rows(first.train)
    assert again.report.kept == 24 and again.report.lengths == first.report.lengths  # the report comes back too
    assert not build(tokenizer, data, cache, max_length=96).from_cache           # max_length changed
    assert not build(tokenizer, data, cache, load_from_cache_file=False).from_cache
    with open(data, "a") as handle:                                                # the data changed
        handle.write(json.dumps({"query": "new?", "response": "new."}) + "\n")
    changed = build(tokenizer, data, cache)
    assert not changed.from_cache and len(changed.train) == 25


def test_parallel_streaming_and_lazy_encoding_give_the_same_rows(tokenizer, data, tmp_path):
    plain = build(tokenizer, data, tmp_path / "a", split_dataset_ratio=0.25)
    parallel = build(tokenizer, data, tmp_path / "b", split_dataset_ratio=0.25, dataset_num_proc=2)
    streamed = build(tokenizer, data, tmp_path / "c", split_dataset_ratio=0.25, streaming=True)
    lazy = build(tokenizer, data, tmp_path / "d", split_dataset_ratio=0.25, lazy_tokenize=True)
    assert len(plain.train) == 18 and len(plain.val) == 6
    for other in (parallel, streamed, lazy):
        assert rows(other.train) == rows(plain.train) and rows(other.val) == rows(plain.val)
    row = plain.train[0]
    assert set(row) >= {"input_ids", "labels"} and len(row["input_ids"]) == len(row["labels"])
    assert any(x != IGNORE for x in row["labels"]) and row["labels"][0] == IGNORE  # only the answer is trained
    assert not list((tmp_path / "d").glob("*"))  # lazy rows are not cached
    assert [p.name for p in (tmp_path / "c").iterdir()] == [streamed.cache_dir.name]  # no work files left


def test_prepare_writes_canonical_rows_cache_and_report_that_sft_reuses(tokenizer, data, tmp_path, smol_dir, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "--dataset", str(data), "--model", str(smol_dir), "--output_dir", str(out),
                 "--max_length", "128", "--split_dataset_ratio", "0.25"]) == 0
    printed = capsys.readouterr().out
    assert "rows read 24, kept 24, dropped 0" in printed and "token-length histogram" in printed
    assert "trained tokens per row" in printed and "rows with zero trained tokens: 0" in printed
    train_lines = (out / "train.jsonl").read_text().splitlines()
    assert len(train_lines) == 18 and len((out / "val.jsonl").read_text().splitlines()) == 6
    assert json.loads(train_lines[0])["source"].startswith(f"{data}:")
    report = json.loads((out / "report.json").read_text())
    assert report["kept"] == 24 and len(report["lengths"]) == 24
    [encoded] = list((out / "encoded").iterdir())
    stamp = os.stat(encoded / "report.json").st_mtime_ns
    cache = tmp_path / "global-cache"
    built = build(tokenizer, out, cache)  # what `sft --dataset DIR` does
    assert built.from_cache and built.cache_dir == encoded and not cache.exists()
    assert len(built.train) == 18 and len(built.val) == 6
    assert os.stat(encoded / "report.json").st_mtime_ns == stamp
    longer = build(tokenizer, out, cache, max_length=256)  # another max_length: encoded again from the rows
    assert not longer.from_cache and longer.train[0]["source"].startswith(f"{data}:")


def test_prepare_ms_swift_shape_without_a_model(data, tmp_path):
    from swiftall.pipelines.prepare import prepare_main

    out = tmp_path / "p"
    summary = prepare_main(["--dataset_name", "my-chat", "--jsonl_path", str(data), "--output_dir", str(out)])
    assert summary["rows"] == {"train": 24}
    marker = json.loads((out / "swiftall_prepared.json").read_text())
    assert marker["name"] == "my-chat" and marker["dataset"] == [str(data)]
    assert not (out / "encoded").exists()
    with pytest.raises(Exception, match="not empty"):
        prepare_main(["--jsonl_path", str(data), "--output_dir", str(out)])


def test_sft_trains_from_a_prepared_folder_without_encoding_again(tiny_dir, data, tmp_path):
    from swiftall import sft_main

    out = tmp_path / "prepared"
    assert main(["prepare", "--dataset", str(data), "--model", str(tiny_dir), "--output_dir", str(out),
                 "--max_length", "128"]) == 0
    [encoded] = list((out / "encoded").iterdir())
    stamp = os.stat(encoded / "report.json").st_mtime_ns
    summary = sft_main({"model": str(tiny_dir), "custom_train_dataset_path": [str(out)], "max_length": 128,
                        "output_dir": str(tmp_path / "run"), "max_steps": 1, "report_to": ["none"],
                        "per_device_train_batch_size": 2, "dataset_cache_dir": str(tmp_path / "c"),
                        "save_steps": 100})
    assert summary["global_step"] == 1 and summary["rows"]["train"] == 24
    assert os.stat(encoded / "report.json").st_mtime_ns == stamp and not (tmp_path / "c").exists()


def test_template_show_marks_trained_tokens(smol_dir, data, capsys):
    from swiftall.pipelines.template_show import template_main

    shown = template_main(["show", "--model", str(smol_dir), "--dataset", str(data), "--rows", "2",
                           "--color", "false"])
    printed = capsys.readouterr().out
    assert len(shown) == 2 and printed.count(f"--- {data}:") == 2
    assert "[[Answer 0. <|im_end|>\n]]" in printed
    assert "[[" not in shown[0]["text"].split("<|im_start|>assistant")[0]  # nothing before the answer is trained
    colored = template_main(["show", "--model", str(smol_dir), "--dataset", str(data), "--rows", "1",
                             "--color", "true"])
    assert "\x1b[1;32mAnswer 0. " in colored[0]["text"] and "[[" not in colored[0]["text"]
