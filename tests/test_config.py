"""Configs are composed from sections: each field declared once, checks in a declared order that change only their
own section, flags a command does not use refused with the commands that do, YAML flat or by section."""
import dataclasses
import inspect
import re

import pytest

from swiftall import config as configs
from swiftall.cli.main import COMMANDS, main
from swiftall.config.argv import build_parser
from swiftall.config.base import _REGISTRY, Config, Section, arg
from swiftall.utils.errors import ConfigError


def all_sections():
    seen = {}
    for cls in _REGISTRY.values():
        for section in cls.sections:
            seen[section.__name__] = section
    return list(seen.values())


def test_every_command_of_the_cli_has_its_config_registered():
    for command, (config_name, *_rest) in COMMANDS.items():
        if config_name:
            assert getattr(configs, config_name).command in _REGISTRY, command


def test_each_field_is_declared_once_across_all_sections():
    owners = {}
    for section in all_sections():
        for field in dataclasses.fields(section):
            assert field.name not in owners, f"--{field.name} in {owners.get(field.name)} and {section.__name__}"
            owners[field.name] = section.__name__
    aliases = {}
    for section in all_sections():
        for field in dataclasses.fields(section):
            for alias in field.metadata["aliases"]:
                assert alias not in owners and alias not in aliases, alias
                aliases[alias] = field.name


def test_sections_are_small_documented_and_check_only_themselves():
    names = {s.__name__ for s in all_sections()}
    for section in all_sections():
        fields = dataclasses.fields(section)
        assert len(fields) <= 30, f"{section.__name__} has {len(fields)} fields"
        assert all(f.metadata["help"] for f in fields), section.__name__
        source = inspect.getsource(section)
        others = [n for n in names if n != section.__name__ and re.search(rf"\b{n}\b", source)]
        assert not others, f"{section.__name__} refers to {others}"


@pytest.mark.parametrize("command", sorted(_REGISTRY))
def test_help_lists_every_flag_grouped_by_section(command):
    cls = _REGISTRY[command]
    text = build_parser(cls).format_help()
    for flag in cls.alias_table():
        assert f"--{flag}" in text, f"swiftall {command} --help lacks --{flag}"
    for section in cls.sections:
        assert f"[{section.name}]" in text


def test_a_flag_of_another_command_is_refused_naming_its_commands(capsys):
    assert main(["infer", "--model", "m", "--packing", "true"]) == 2
    err = capsys.readouterr().err
    assert "--packing is not an option of swiftall infer" in err and "sft" in err
    assert main(["infer", "--model", "m", "--freeze_vit", "false"]) == 2
    err = capsys.readouterr().err
    assert "sft" in err and "rlhf" in err and "dpo" in err
    with pytest.raises(ConfigError, match="--truncation_strategy is not an option of swiftall deploy"):
        configs.DeployConfig.from_any(["--model", "m", "--truncation_strategy", "left"])
    with pytest.raises(ConfigError, match="--reward_funcs is not an option of swiftall dpo; it belongs to swiftall rlhf"):
        configs.DpoConfig.from_any(["--model", "m", "--dataset", "d", "--reward_funcs", "accuracy"])


def test_yaml_takes_flat_names_aliases_or_sections(tmp_path):
    flat = tmp_path / "flat.yaml"
    flat.write_text("model: m\ntrain_dataset: [d.jsonl]\nlearning_rate: 0.001\nlora_rank: 4\n")
    nested = tmp_path / "nested.yaml"
    nested.write_text("model: {model: m}\ndata: {dataset: [d.jsonl]}\ntrain: {learning_rate: 0.001}\n"
                      "tuner: {lora_rank: 4}\n")
    a = configs.SftConfig.from_any(["--config", str(flat)])
    b = configs.SftConfig.from_any(["--config", str(nested), "--lora_rank", "4"])
    assert a.to_dict() == b.to_dict()
    assert a.to_sections()["train"]["learning_rate"] == 0.001 and a.to_sections()["tuner"]["lora_rank"] == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\ndataset: [d]\ntrain: {lora_rank: 4}\n")
    with pytest.raises(ConfigError, match="section 'train': 'lora_rank' is not one of its options"):
        configs.SftConfig.from_any(["--config", str(bad)])


def test_command_defaults_differ_without_a_second_declaration():
    assert configs.InferConfig.from_any({"model": "m"}).max_length == 2048
    assert configs.DeployConfig.from_any({"model": "m"}).max_length is None
    assert configs.InferConfig.from_any({"model": "m"}).temperature is None
    rlhf = configs.RlhfConfig.from_any({"model": "m", "dataset": ["d"], "rlhf_type": "grpo",
                                        "reward_funcs": ["accuracy"]})
    assert rlhf.temperature == 0.9 and rlhf.top_p == 1.0 and rlhf.beta == 0.04
    assert "[default: None]" in build_parser(configs.DeployConfig).format_help().split("--max_length MAX_LENGTH")[-1][:200]


def test_cross_section_checks_cannot_change_fields():
    @dataclasses.dataclass
    class A(Section):
        name = "a"
        x: int = arg(1, "x")

    @dataclasses.dataclass
    class B(Section):
        name = "b"
        y: int = arg(1, "y")

    class Sneaky(Config):
        sections = (A, B)

        def check(self):
            self.y = self.x

    with pytest.raises(RuntimeError, match="must not change fields"):
        Sneaky()
    with pytest.raises(TypeError, match="declared by both"):
        class Twice(Config):  # noqa: F841
            sections = (A, A)


def test_tutorial_aliases_add_up_instead_of_silently_replacing():
    cfg = configs.SftConfig.from_any(["--model", "m", "--train_dataset", "samples",
                                      "--custom_train_dataset_path", "./processed_data"])
    assert cfg.dataset == ["samples", "./processed_data"]
    cfg = configs.SftConfig.from_any({"model": "m", "train_dataset": ["a"], "custom_train_dataset_path": "b"})
    assert cfg.dataset == ["a", "b"]
    with pytest.raises(ConfigError, match="set the same option"):
        configs.SftConfig.from_any({"model": "m", "dataset": ["d"], "model_path": "x"})


def test_bad_numbers_and_paths_stop_before_anything_loads(tmp_path, capsys):
    assert main(["sft", "--model", "no-such-model", "--dataset", "d", "--learning_rate", "-1"]) == 2
    assert "--learning_rate must be > 0, got -1.0" in capsys.readouterr().err
    afile = tmp_path / "out"
    afile.write_text("x")
    assert main(["sft", "--model", "no-such-model", "--dataset", "d", "--output_dir", str(afile)]) == 2
    assert "a file of that name exists" in capsys.readouterr().err
    for flag, value in (("--max_batch_size", "0"), ("--top_k", "-1"), ("--max_new_tokens", "0")):
        with pytest.raises(ConfigError, match=flag):
            configs.InferConfig.from_any(["--model", "m", flag, value])


def test_a_field_may_not_hide_a_method():
    @dataclasses.dataclass
    class C(Section):
        name = "c"
        check: str = arg(None, "hides Section.check")

    with pytest.raises(TypeError, match="would hide methods"):
        class Bad(Config):  # noqa: F841
            sections = (C,)
    cfg = configs.ExportConfig.from_any(["--model", "m", "--check", "out/x.gguf"])
    assert cfg.check_path == "out/x.gguf"
