"""The dataset registry: built-in catalog, bundled sets, hub loading through the real clients (offline errors),
user registries (dataset_info.json / YAML) and --plugin files."""
import json
import textwrap

import pytest

from swiftall.cli.main import main
from swiftall.config import SftConfig
from swiftall.data import list_datasets
from swiftall.data.build import canonical_datasets
from swiftall.data.report import DataReport
from swiftall.utils.errors import ConfigError, DataError


def canonical(specs, task="sft", **extra):
    cfg = SftConfig.from_any({"model": "m", "dataset": [str(s) for s in specs], **extra})
    train, _ = canonical_datasets(cfg, DataReport(), task)
    return [json.loads(s) for s in train["sample"]], list(train["source"])


def test_catalog_has_the_well_known_datasets_with_hub_ids():
    metas = {m.name: m for m in list_datasets()}
    assert len(metas) >= 30
    for name in ("alpaca-gpt4-en", "alpaca-gpt4-zh", "sharegpt-gpt4", "ultrachat-200k", "self-cognition", "hh-rlhf",
                 "ultrafeedback", "coco-caption", "textvqa", "vizwiz"):
        assert name in metas, name
    for meta in metas.values():
        assert meta.builtin_file or meta.hf_id or meta.ms_id, meta.name
        assert meta.split and meta.description
    assert metas["ultrachat-200k"].split == ("train_sft",) and metas["gsm8k"].subsets == ("main",)


def test_dataset_list_command(capsys):
    assert main(["dataset", "list"]) == 0
    out = capsys.readouterr().out
    assert "vicgalle/alpaca-gpt4 / AI-ModelScope/alpaca-gpt4-data-en" in out and "bundled" in out
    assert len(out.strip().splitlines()) >= 31
    assert main(["dataset", "list", "--task", "rlhf"]) == 0
    rlhf = capsys.readouterr().out
    assert "hh-rlhf" in rlhf and "alpaca-gpt4-en" not in rlhf


def test_bundled_sets_need_no_network():
    demo, _ = canonical(["swiftall-demo"])
    assert len(demo) >= 5 and demo[0]["messages"][-1]["role"] == "assistant"
    pref, _ = canonical(["preference-demo"], task="rlhf")
    assert len(pref) >= 5 and all(p["rejected_response"] for p in pref)
    cognition, _ = canonical(["self-cognition#4"], model_name=["Swifty"], model_author=["the swiftall team"])
    text = json.dumps(cognition)
    assert len(cognition) == 4 and "Swifty" in text and "the swiftall team" in text and "{{NAME}}" not in text
    with pytest.raises(DataError, match="--model_name NAME and --model_author AUTHOR"):
        canonical(["self-cognition"])


def test_hub_datasets_offline_fail_with_a_clear_message():
    with pytest.raises(DataError) as info:  # tests run with HF_HUB_OFFLINE=1
        canonical(["alpaca-gpt4-en#10"])
    message = str(info.value)
    assert "vicgalle/alpaca-gpt4" in message and "offline" in message and "swiftall prepare" in message
    with pytest.raises(DataError, match="ModelScope dataset 'AI-ModelScope/alpaca-gpt4-data-en'.*offline"):
        canonical(["alpaca-gpt4-en"], use_hf=False)
    with pytest.raises(DataError, match="someone/missing-set"):
        canonical(["someone/missing-set"])
    with pytest.raises(DataError, match="not a registered dataset name"):
        canonical(["no-such-thing"])


def test_registered_hub_entries_load_through_datasets(tmp_path):
    """A registered entry's id goes to datasets.load_dataset (here a local repo folder), then its columns and
    preprocess function apply."""
    from swiftall.data import DatasetMeta, register_dataset

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.jsonl").write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n"
                                              for i in range(3)))
    register_dataset(DatasetMeta("test-local-hub", "a test entry", hf_id=str(repo),
                                 columns={"question": "query", "answer": "response"}))
    samples, sources = canonical(["test-local-hub"])
    assert [s["messages"][1]["content"] for s in samples] == ["a0", "a1", "a2"]
    assert sources[0] == f"{repo}[train]:1"


def test_user_registries_in_ms_swift_llama_factory_and_yaml_shapes(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "qa.jsonl").write_text(json.dumps({"q": "Hi", "a": "Hello"}) + "\n")
    (tmp_path / "d" / "alp.json").write_text(json.dumps([{"instr": "Say hi", "out": "hi"}]))
    ms = tmp_path / "ms_info.json"
    ms.write_text(json.dumps([{"dataset_name": "my-qa", "dataset_path": "d/qa.jsonl",
                               "columns": {"q": "query", "a": "response"}}]))
    lf = tmp_path / "dataset_info.json"
    lf.write_text(json.dumps({"my-alpaca": {"file_name": "d/alp.json", "formatting": "alpaca",
                                            "columns": {"prompt": "instr", "response": "out"}}}))
    ya = tmp_path / "mine.yaml"
    ya.write_text("my-yaml:\n  path: d/qa.jsonl\n  columns: {q: query, a: response}\n")
    samples, _ = canonical(["my-qa", "my-alpaca", "my-yaml"], custom_dataset_info=[str(ms), str(lf), str(ya)])
    assert [s["messages"][-1]["content"] for s in samples] == ["Hello", "hi", "Hello"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"dataset_name": "nothing"}]))
    with pytest.raises(ConfigError, match="bad.json: entry 1: give dataset_path"):
        canonical(["my-qa"], custom_dataset_info=[str(bad)])


def test_plugin_registers_a_dataset_with_its_own_preprocess(tmp_path):
    (tmp_path / "raw.jsonl").write_text(json.dumps({"src": "bonjour", "tgt": "hello"}) + "\n")
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(textwrap.dedent(f"""
        from swiftall.data import DatasetMeta, register_dataset

        def to_chat(row):
            return {{"messages": [{{"role": "user", "content": "Translate: " + row["src"]}},
                                  {{"role": "assistant", "content": row["tgt"]}}]}}

        register_dataset(DatasetMeta("plugin-translate", "from a plugin", path={str(tmp_path / 'raw.jsonl')!r},
                                     preprocess=to_chat))
    """))
    samples, sources = canonical(["plugin-translate"], plugin=[str(plugin)])
    assert samples[0]["messages"][0]["content"] == "Translate: bonjour"
    assert sources == [f"{tmp_path / 'raw.jsonl'}:1"]
    broken = tmp_path / "broken_plugin.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="broken_plugin.py: failed while loading: RuntimeError: boom"):
        canonical(["swiftall-demo"], plugin=[str(broken)])
