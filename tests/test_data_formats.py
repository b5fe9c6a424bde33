"""Every common format becomes the one canonical sample; every file type reads with file:line kept."""
import json

import pytest

from swiftall.config import SftConfig
from swiftall.data.build import canonical_datasets
from swiftall.data.convert import to_messages
from swiftall.data.read import Row
from swiftall.data.report import DataReport
from swiftall.data.validate import validate_sample


def convert(data, task="sft", file="/data/x.jsonl"):
    row = Row(data, file, 7)
    sample = to_messages(row, task)
    validate_sample(row, sample, task)
    return sample


def canonical(specs, task="sft", **extra):
    cfg = SftConfig.from_any({"model": "m", "dataset": [str(s) for s in specs], **extra})
    report = DataReport()
    train, val = canonical_datasets(cfg, report, task)
    return [json.loads(s) for s in train["sample"]], list(train["source"]), report, val


USER_HI = {"role": "user", "content": "Hi"}


def test_openai_messages_with_content_parts_collect_media():
    row = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                                                     {"type": "text", "text": "What is this?"}]},
                        {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]}
    sample = convert(row)
    assert sample["messages"] == [{"role": "user", "content": "<image>What is this?"},
                                  {"role": "assistant", "content": "A cat."}]
    assert sample["images"] == ["https://x/y.png"]


def test_sharegpt_with_system_tools_calls_and_observations():
    row = {"system": "Be brief.", "tools": json.dumps([{"name": "weather", "parameters": {}}]),
           "conversations": [{"from": "human", "value": "Weather in Paris?"},
                             {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
                             {"from": "observation", "value": '{"sky": "sunny"}'},
                             {"from": "gpt", "value": "Sunny."}]}
    sample = convert(row)
    roles = [m["role"] for m in sample["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call = sample["messages"][2]["tool_calls"][0]["function"]
    assert call == {"name": "weather", "arguments": {"city": "Paris"}}
    assert sample["tools"] == [{"name": "weather", "parameters": {}}]  # JSON text parsed into a list


def test_alpaca_query_response_prompt_completion_and_text():
    alpaca = convert({"instruction": "Translate", "input": "chat", "output": "cat", "system": "S",
                      "history": [["hi", "hello"]]})
    assert alpaca["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "hello"},
                                  {"role": "user", "content": "Translate\n\nchat"},
                                  {"role": "assistant", "content": "cat"}]
    qr = convert({"query": "2+2?", "response": "4", "id": 17})
    assert qr == {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], "id": 17}
    pc = convert({"prompt": "Hi", "completion": "Hello"})
    assert pc["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert convert({"text": "Once upon a time.", "source_url": "u"}, task="pt") == {"text": "Once upon a time.",
                                                                                     "source_url": "u"}
    grpo = convert({"query": "2+2?", "solution": "4"}, task="grpo")  # prompt-only rows keep their columns
    assert grpo == {"messages": [{"role": "user", "content": "2+2?"}], "solution": "4"}


@pytest.mark.parametrize("row", [
    {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
    {"prompt": [USER_HI], "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "assistant", "content": "Go away."}]},
    {"prompt": "Hi", "chosen": [USER_HI, {"role": "assistant", "content": "Hello!"}],      # UltraFeedback binarized
     "rejected": [USER_HI, {"role": "assistant", "content": "Go away."}]},
    {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."},  # HH
    {"messages": [USER_HI, {"role": "assistant", "content": "Hello!"}], "rejected_response": "Go away."},
    {"instruction": "Hi", "chosen": "Hello!", "rejected": "Go away."},
])
def test_preference_shapes_give_chosen_messages_and_rejected_response(row):
    sample = convert(row, task="rlhf")
    assert sample["messages"] == [USER_HI, {"role": "assistant", "content": "Hello!"}]
    assert sample["rejected_response"] == "Go away."
    assert "rejected_messages" not in sample  # the prompts agree


def test_kto_labels_are_normalised_and_other_columns_pass_through():
    sample = convert({"prompt": "Hi", "completion": "Hello", "label": "false", "score": 0.2}, task="kto")
    assert sample["label"] is False and sample["score"] == 0.2
    assert convert({"prompt": "Hi", "completion": "Hello", "label": 1}, task="kto")["label"] is True


def test_relative_media_paths_resolve_against_the_dataset_files_folder(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "set"
    (folder / "pics").mkdir(parents=True)
    Image.new("RGB", (2, 2)).save(folder / "pics" / "a.png")
    data = folder / "data.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "<image>What?"},
                                             {"role": "assistant", "content": "Black."}],
                                "images": ["pics/a.png"]}) + "\n")
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    samples, sources, _, _ = canonical([data])
    assert samples[0]["images"] == [str(folder / "pics" / "a.png")]
    assert sources == [f"{data}:1"]


def _chat(i):
    return {"query": f"q{i}", "response": f"a{i}"}


def test_every_file_type_and_folder_reads_with_its_lines(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text("".join(json.dumps(_chat(i)) + "\n" for i in range(2)))
    (tmp_path / "b.json").write_text(json.dumps({"data": [_chat(i) for i in range(2, 4)]}))
    (tmp_path / "c.csv").write_text('query,response\nq4,"a4, with a comma"\n')
    (tmp_path / "d.tsv").write_text("query\tresponse\nq5\ta5\n")
    pq.write_table(pa.Table.from_pylist([_chat(6), _chat(7)]), tmp_path / "e.parquet")
    samples, sources, report, _ = canonical([tmp_path])
    assert report.read == 8 and len(samples) == 8
    assert [s["messages"][0]["content"] for s in samples] == [f"q{i}" for i in range(8)]
    assert samples[4]["messages"][1]["content"] == "a4, with a comma"
    assert sources[3] == f"{tmp_path / 'b.json'}:2" and sources[4] == f"{tmp_path / 'c.csv'}:2"
    assert sources[7] == f"{tmp_path / 'e.parquet'}:2"


def test_hf_save_to_disk_folders(tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_list([_chat(i) for i in range(3)]).save_to_disk(str(tmp_path / "ds"))
    DatasetDict({"train": Dataset.from_list([_chat(9)]), "test": Dataset.from_list([_chat(8)])}).save_to_disk(
        str(tmp_path / "dd"))
    samples, sources, _, _ = canonical([tmp_path / "ds", tmp_path / "dd"])
    assert [s["messages"][1]["content"] for s in samples] == ["a0", "a1", "a2", "a9"]
    assert sources[3] == f"{tmp_path / 'dd'}[train]:1"


def test_sampling_mixing_renaming_and_splitting(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(10)))
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"q": f"b{i}", "a": "x"}) + "\n" for i in range(3)))
    columns = json.dumps({"q": "query", "a": "response"})
    first, _, _, _ = canonical([f"{a}#4", b], columns=columns)
    again, _, _, _ = canonical([f"{a}#4", b], columns=columns)
    assert len(first) == 7 and first == again  # reproducible with the same --data_seed
    picked = [s["messages"][0]["content"] for s in first[:4]]
    assert len(set(picked)) == 4 and all(p.startswith("q") for p in picked)
    more, _, _, _ = canonical([f"{b}#5"], columns=columns)
    assert len(more) == 5  # N above the row count cycles through the rows
    train, _, _, val = canonical([a], columns=columns, split_dataset_ratio=0.2)
    assert len(train) == 8 and len(val) == 2
