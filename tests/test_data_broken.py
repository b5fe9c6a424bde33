"""The broken-input corpus (tests/data/broken, described in cases.json): each file gets an error naming its file,
line and field; --strict false skips and counts every bad row, and nothing is dropped silently."""
import json
import shutil
from pathlib import Path

import pytest

from swiftall.cli.main import main
from swiftall.config import SftConfig
from swiftall.data import build_datasets
from swiftall.data.build import canonical_datasets
from swiftall.data.report import DataReport
from swiftall.utils.errors import ConfigError, DataError

BROKEN = Path(__file__).parent / "data" / "broken"
CASES = json.loads((BROKEN / "cases.json").read_text())
ROW_CASES = sorted(n for n, c in CASES.items() if not c.get("encoded") and c["line"] and not c.get("whole_file"))
ENCODED_CASES = sorted(n for n, c in CASES.items() if c.get("encoded"))
WHOLE_FILE_CASES = sorted(n for n, c in CASES.items() if c.get("whole_file"))


def config(name, strict=True, **extra):
    return SftConfig.from_any({"model": "m", "dataset": [str(BROKEN / name)], "strict": strict, **extra})


def test_corpus_has_at_least_25_broken_inputs():
    assert len(CASES) >= 25
    for name in CASES:
        assert (BROKEN / name).is_file(), name


@pytest.mark.parametrize("name", ROW_CASES)
def test_strict_stops_with_file_line_and_field(name):
    case = CASES[name]
    with pytest.raises(DataError) as info:
        canonical_datasets(config(name), DataReport(), case["task"])
    message = str(info.value)
    if case["kept"] == 0:  # every row bad: the first one stops the run
        assert f"{BROKEN / name}:1:" in message
        return
    assert f"{BROKEN / name}:{case['line']}:" in message
    for text in case["says"]:
        assert text in message, (text, message)
    assert "--strict false" in message


@pytest.mark.parametrize("name", ROW_CASES)
def test_non_strict_skips_and_counts_every_bad_row(name):
    case = CASES[name]
    report = DataReport()
    train, _ = canonical_datasets(config(name, strict=False), report, case["task"])
    assert report.n_dropped == case["dropped"]
    assert len(train) == case["kept"]
    assert report.read == case["kept"] + case["dropped"]  # every row is either kept or counted as dropped
    assert len(report.problems) == case["dropped"]
    if case["kept"]:
        assert report.problems[0].startswith(f"{BROKEN / name}:{case['line']}:")
        assert all(text in report.problems[0] for text in case["says"])
        kept_lines = {s.rsplit(":", 1)[1] for s in train["source"]}
        assert str(case["line"]) not in kept_lines


@pytest.mark.parametrize("name", WHOLE_FILE_CASES)
@pytest.mark.parametrize("strict", [True, False])
def test_whole_file_problems_stop_naming_the_file_even_without_strict(name, strict):
    case = CASES[name]
    with pytest.raises(DataError) as info:
        canonical_datasets(config(name, strict=strict), DataReport(), case["task"])
    message = str(info.value)
    assert message.startswith(f"{BROKEN / name}{':' + str(case['line']) if case['line'] else ''}: "), message
    for text in case["says"]:
        assert text in message, (text, message)


def test_an_empty_folder_and_an_unreadable_file_are_named(tmp_path, monkeypatch):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"{empty}: the folder holds no .jsonl/.json/.csv/.tsv/.parquet files"):
        canonical_datasets(SftConfig.from_any({"model": "m", "dataset": [str(empty)]}), DataReport(), "sft")
    locked = tmp_path / "locked.jsonl"
    locked.write_text('{"query": "Hi", "response": "Hello"}\n')

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("swiftall.data.read.open", refuse, raising=False)  # as a file without read permission
    with pytest.raises(DataError, match=rf"{locked}: cannot be read \(Permission denied\)"):
        canonical_datasets(SftConfig.from_any({"model": "m", "dataset": [str(locked)], "strict": False}),
                           DataReport(), "sft")


def test_a_rename_onto_an_existing_column_is_refused(tmp_path):
    data = tmp_path / "both.jsonl"
    data.write_text(json.dumps({"query": "Hi", "a": "Hello", "response": "old answer"}) + "\n")
    for strict in (True, False):
        cfg = SftConfig.from_any({"model": "m", "dataset": [str(data)], "columns": {"a": "response"},
                                  "strict": strict})
        with pytest.raises(ConfigError, match=rf"{data}:1: --columns renames 'a' to 'response', but the row already "
                                              "has a 'response' column"):
            canonical_datasets(cfg, DataReport(), "sft")
    swapped = SftConfig.from_any({"model": "m", "dataset": [str(data)], "columns": {"a": "response",
                                                                                   "response": "old"}})
    train, _ = canonical_datasets(swapped, DataReport(), "sft")
    sample = json.loads(train[0]["sample"])
    assert sample["messages"][1]["content"] == "Hello" and sample["old"] == "old answer"


@pytest.fixture(scope="module")
def template(smol_dir):
    from transformers import AutoTokenizer

    from swiftall.templates import get_template

    tokenizer = AutoTokenizer.from_pretrained(smol_dir)
    return lambda strategy: get_template(tokenizer, max_length=64, truncation_strategy=strategy)


def build(name, template, strategy, tmp_path, strict=True):
    cfg = config(name, strict=strict, max_length=64, truncation_strategy=strategy, dataset_cache_dir=str(tmp_path))
    return build_datasets(cfg, template(strategy))


def test_too_long_row_under_each_truncation_strategy(template, tmp_path):
    deleted = build("too_long.jsonl", template, "delete", tmp_path)  # delete drops even when strict, and says so
    assert len(deleted.train) == 2 and deleted.report.n_dropped == 1 and deleted.report.over_max_length == 1
    problem = deleted.report.problems[0]
    assert "too_long.jsonl:2:" in problem and "longer than --max_length 64" in problem
    with pytest.raises(DataError, match=r"too_long.jsonl:2: \d+ tokens is longer than --max_length 64"):
        build("too_long.jsonl", template, "error", tmp_path)
    for strategy in ("left", "right"):
        cut = build("too_long.jsonl", template, strategy, tmp_path)
        assert len(cut.train) == 3 and cut.report.truncated == 1 and cut.report.n_dropped == 0
        assert max(len(r) for r in cut.train["input_ids"]) == 64


def test_truncation_that_leaves_nothing_to_train_is_reported(template, tmp_path):
    built = build("long_prompt.jsonl", template, "right", tmp_path)
    assert len(built.train) == 2 and built.report.dropped["no trained (assistant) tokens left"] == 1
    assert "long_prompt.jsonl:2: no assistant tokens to train on after truncation" in built.report.problems[0]
    assert "rows with zero trained tokens: 1" in built.report.summary()


def test_every_row_dropped_stops_with_the_counts(template, tmp_path):
    with pytest.raises(DataError) as info:
        build("all_dropped.jsonl", template, "delete", tmp_path, strict=False)
    message = str(info.value)
    assert "every training row was dropped (3 read)" in message and "dropped 3" in message
    for line in (1, 2, 3):
        assert f"all_dropped.jsonl:{line}:" in message
    with pytest.raises(DataError, match="empty_file.jsonl: the file holds no rows"):
        build("empty_file.jsonl", template, "delete", tmp_path)


def test_cli_prints_one_clean_line(tmp_path, capsys):
    assert main(["prepare", "--dataset", str(BROKEN / "unknown_role.jsonl"), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swiftall prepare: error: ") and "unknown_role.jsonl:3: field 'messages[1].role'" in err
    assert "Traceback" not in err


def test_cli_non_strict_report_lists_what_was_dropped(tmp_path, capsys):
    src = tmp_path / "mixed.jsonl"
    shutil.copy(BROKEN / "unknown_role.jsonl", src)
    with open(src, "a") as handle:
        handle.write("{broken\n")
    out = tmp_path / "o"
    assert main(["prepare", "--dataset", str(src), "--output_dir", str(out), "--strict", "false"]) == 0
    printed = capsys.readouterr().out
    assert "rows read 4, kept 2, dropped 2" in printed
    assert f"{src}:3:" in printed and f"{src}:4: invalid JSON" in printed
    saved = json.loads((out / "report.json").read_text())
    assert saved["read"] == 4 and saved["kept"] == 2 and sum(saved["dropped"].values()) == 2
