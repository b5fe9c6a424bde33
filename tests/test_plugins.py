"""One --plugin loader: a plugin file runs once per process, before the model and data are resolved, and may
register models, datasets and reward functions together."""
import json
import textwrap

import pytest

from swiftall.config import RlhfConfig
from swiftall.data.build import canonical_datasets
from swiftall.data.report import DataReport
from swiftall.models import get_model_meta
from swiftall.train.rlhf import rewards
from swiftall.utils.errors import ConfigError
from swiftall.utils.plugins import load_plugins

PLUGIN = """
    from pathlib import Path

    from swiftall.data import DatasetMeta, register_dataset
    from swiftall.models.registry import ModelMeta, register_model
    from swiftall.train.rlhf.rewards import register_reward

    with open({runs!r}, "a") as handle:   # one line per run of this file
        handle.write("ran\\n")

    register_model(ModelMeta("plugin-llama", "llama", hf_id="someone/plugin-llama"))
    register_dataset(DatasetMeta("plugin-sums", "from a plugin", path={data!r}))

    @register_reward("plugin_shout")
    def shout(prompts, completions, **kw):
        return [1.0 if str(c).isupper() else 0.0 for c in completions]
"""


@pytest.fixture
def plugin(tmp_path):
    """The plugin file; the registries get back their former contents afterwards."""
    from swiftall.data import registry as data_registry
    from swiftall.models import registry as model_registry

    data_registry.list_datasets(), model_registry.list_models()  # the built-ins first, so they are kept
    saved = [(d, dict(d)) for d in (data_registry.DATASETS, model_registry.MODELS, rewards.REWARDS)]
    yield _write_plugin(tmp_path)
    for registry, before in saved:
        registry.clear()
        registry.update(before)


def _write_plugin(tmp_path):
    data = tmp_path / "sums.jsonl"
    data.write_text(json.dumps({"query": "What is 1 + 1?", "response": "2"}) + "\n")
    path = tmp_path / "everything_plugin.py"
    path.write_text(textwrap.dedent(PLUGIN.format(runs=str(tmp_path / "runs.txt"), data=str(data))))
    return path


def test_a_plugin_registering_a_reward_runs_once_for_data_and_rewards(plugin, tmp_path):
    cfg = RlhfConfig(model="m", dataset=["plugin-sums"], rlhf_type="grpo", reward_funcs=["plugin_shout", "accuracy"],
                     plugin=[str(plugin), str(plugin)])
    load_plugins(cfg.plugin)                       # what every pipeline does first
    assert get_model_meta("plugin-llama").family == "llama"
    train, _ = canonical_datasets(cfg, DataReport(), "sft")   # the data layer asks for the plugins again
    assert json.loads(train[0]["sample"])["messages"][1]["content"] == "2"
    funcs = rewards.resolve_rewards(cfg)           # and so do the rewards: no "already registered"
    assert [f.__name__ for f in funcs] == ["plugin_shout", "accuracy"]
    assert funcs[0]([None, None], ["YES", "no"]) == [1.0, 0.0]
    assert (tmp_path / "runs.txt").read_text() == "ran\n"


def test_plugin_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"--plugin .*missing.py: no such file"):
        load_plugins([str(tmp_path / "missing.py")])
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ConfigError, match=r"notes.txt: not a Python file"):
        load_plugins([str(text)])
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match=r"bad_plugin.py: failed while loading: RuntimeError: boom"):
        load_plugins([str(bad)])
