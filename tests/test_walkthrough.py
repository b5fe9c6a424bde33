"""Issue #19: ms-swift's multimodal walkthrough ("Swift-All", prepare -> sft -> tensorboard -> dpo -> SwiftInfer),
replayed with `swiftall` for `swift` on a tiny Qwen2-VL, with the tutorial's flags as written, in a fresh folder
with relative paths; and the pieces it needs (placeholder dataset names, one --adapters parser, one run-folder
resolver, prepared rows that resolve), plus the newcomer items of the issue."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures_mm import qwen2_vl, write_image
from swiftall.utils.errors import ConfigError, DataError

# ---- the walkthrough, step by step (section 3 of the tutorial; `swift` -> `swiftall`, qwen_vl_chat -> qwen2_vl) ----
PREPARE = "prepare --dataset_name my_multimodal_data --jsonl_path ./data/train.jsonl --output_dir ./processed_data"
SFT = ("sft --model_type qwen2_vl --model_path ./qwen2-vl --train_dataset samples --custom_train_dataset_path "
       "./processed_data --num_train_epochs 3 --per_device_train_batch_size 1 --learning_rate 1e-4 --lora_rank 8 "
       "--lora_alpha 32 --lora_dropout_p 0.05 --gradient_checkpointing true --max_length 2048 --use_flash_attn true "
       "--output_dir ./output_qwen_vl_lora")
TENSORBOARD = "--inspect --logdir ./output_qwen_vl_lora"   # `tensorboard --logdir OUT`, without starting a server
DPO = ("dpo --model_type qwen2_vl --sft_model_path ./output_qwen_vl_lora --train_dataset dpo_dataset "
       "--custom_train_dataset_path ./data/dpo_data.jsonl --beta 0.1 --label_smoothing 0.01 --max_length 1024 "
       "--per_device_train_batch_size 1 --num_train_epochs 2 --output_dir ./output_qwen_vl_dpo")
# max_new_tokens keeps a random model's answer short; the rest is the tutorial's code
SWIFT_INFER = ("import json; from swiftall import SwiftInfer\n"
               "inferencer = SwiftInfer.from_pretrained('./output_qwen_vl_dpo', max_new_tokens=8)\n"
               "response = inferencer.infer('这张图里有什么<image>', images=['./data/img/0.png'])\n"
               "print('ANSWER=' + json.dumps(response))")
# section 3.5 and 4: evaluation, GPTQ export, the web UI (`--gpus 0` is noted and ignored on a CPU machine)
EVAL = "eval --model_type qwen2_vl --model_path ./output_qwen_vl_dpo --eval_dataset textvqa,coco_caption --gpus 0"
EXPORT = ("export --model_type qwen2_vl --model_path ./output_qwen_vl_dpo --quant_method gptq --quant_bits 4 "
          "--output_dir ./exported_qwen_vl_gptq")
WEBUI = "webui --model_path ./output_qwen_vl_dpo --model_type qwen2_vl --port {port}"


def _swiftall() -> list[str]:
    script = Path(sys.executable).parent / "swiftall"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "swiftall"]


def _run(cwd: Path, argv: list[str], timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})})
    assert done.returncode == 0, f"{' '.join(argv)} -> exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-6000:]
    return done


def _write_tutorial_data(root: Path, n: int = 2) -> None:
    """The tutorial's two files, with image paths relative to the data file's folder."""
    (root / "data" / "img").mkdir(parents=True)
    sft, dpo = [], []
    for i in range(n):
        write_image(root / "data" / "img" / f"{i}.png", seed=i)
        sft.append({"messages": [{"role": "user", "content": "这是什么动物<image>"},
                                 {"role": "assistant", "content": f"这是第 {i} 只小狗。"}], "images": [f"img/{i}.png"]})
        dpo.append({"prompt": "请描述这张图片。<image>", "chosen": f"这是一只坐在草地上的棕色小狗 {i}。",
                    "rejected": "图片里有些东西。", "images": [f"img/{i}.png"]})
    for name, rows in (("train.jsonl", sft), ("dpo_data.jsonl", dpo)):
        (root / "data" / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.mark.slow
def test_the_multimodal_walkthrough_runs_as_written(smol_dir, tmp_path):
    root = tmp_path / "walk"
    root.mkdir()
    qwen2_vl(smol_dir, root / "qwen2-vl", num_key_value_heads=4)  # key/value outputs of 32: GPTQ's CPU kernel
    _write_tutorial_data(root)

    _run(root, [*_swiftall(), *PREPARE.split()])
    rows = [json.loads(line) for line in (root / "processed_data" / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(Path(r["images"][0]).is_absolute() and Path(r["images"][0]).is_file() for r in rows)

    sft = _run(root, [*_swiftall(), *SFT.split()])
    assert "'samples'" in sft.stderr and "name of the custom data" in sft.stderr  # the placeholder, said aloud
    assert "FutureWarning" not in sft.stderr and "GPT-QModel" not in sft.stdout + sft.stderr  # no library noise
    run = root / "output_qwen_vl_lora"
    adapter = json.loads((run / "adapter_config.json").read_text())
    assert adapter["lora_dropout"] == 0.05 and adapter["r"] == 8 and adapter["lora_alpha"] == 32
    saved = json.loads((run / "args.json").read_text())
    assert saved["gradient_checkpointing"] is True and saved["dataset"][-1] == "./processed_data"
    assert saved["model_path"] == str((root / "qwen2-vl").resolve())  # found again from any folder
    assert list((run / "runs").rglob("events.out.tfevents.*")), "no TensorBoard events"

    board = _run(root, [str(Path(sys.executable).parent / "tensorboard"), *TENSORBOARD.split()])
    assert re.search(r"scalars\s+first_step\s+1\s+last_step\s+6\b", board.stdout), board.stdout  # 2 rows x 3 epochs

    dpo = _run(root, [*_swiftall(), *DPO.split()])
    assert "done: 4 dpo steps" in dpo.stderr, dpo.stderr[-3000:]
    saved = json.loads((root / "output_qwen_vl_dpo" / "args.json").read_text())
    assert saved["model_path"] == str((root / "qwen2-vl").resolve())   # the base, from the sft run
    assert saved["model_type"] == "qwen2_vl"                          # --model_type kept as the family
    assert saved["start_adapters"] == [str(run.resolve())]           # what infer merges first
    steps = [json.loads(line) for line in (root / "output_qwen_vl_dpo" / "logging.jsonl").read_text().splitlines()]
    assert any("rewards/margins" in s for s in steps)

    answer = _run(root, [sys.executable, "-c", SWIFT_INFER])
    assert f"merged {run.resolve()} into the base first" in answer.stderr, answer.stderr[-3000:]
    assert "FutureWarning" not in answer.stderr and "deprecated" not in answer.stderr  # the Python API is quiet too
    text = json.loads(answer.stdout.split("ANSWER=")[-1])
    assert isinstance(text, str)

    _eval_step(root, run)
    _export_step(root, run)
    _webui_step(root)


def _cache_benchmarks(cache: Path, n: int = 2) -> None:
    """textvqa and coco_caption as a first online read leaves them in swiftall's evaluation cache: rows in the hub's
    columns, converted by the benchmark's own reader (this machine cannot reach the hub)."""
    from PIL import Image

    from swiftall.eval import cache as eval_cache
    from swiftall.eval.benchmarks import get_benchmark

    hub_rows = {
        "textvqa": [{"question": f"What number is written {i}?", "answers": [str(i)] * 10, "question_id": i,
                     "image": Image.new("RGB", (56, 56), (60 * i, 90, 200))} for i in range(n)],
        "coco_caption": [{"answer": [f"a blue square number {i}"], "image": Image.new("RGB", (56, 56), (200, 60 * i, 90))}
                         for i in range(n)]}
    os.environ["SWIFTALL_CACHE"] = str(cache)
    try:
        for name, rows in hub_rows.items():
            bench = get_benchmark(name)
            eval_cache.save_items(eval_cache.cache_dir(bench.name, bench.hf_id, "", bench.split),
                                  [bench.to_item(row, i, "") for i, row in enumerate(rows)],
                                  {"hub": "huggingface", "hub_id": bench.hf_id, "subset": "", "split": bench.split})
    finally:
        del os.environ["SWIFTALL_CACHE"]


def _eval_step(root: Path, sft_run: Path) -> None:
    cache = root.parent / "swiftall-cache"
    _cache_benchmarks(cache)
    done = _run(root, [*_swiftall(), *EVAL.split()], env={"SWIFTALL_CACHE": str(cache)})
    assert "GPT-QModel" not in done.stdout + done.stderr and "INFO:absl" not in done.stderr  # no library noise
    assert f"merged {sft_run.resolve()} into the base first" in done.stderr  # the dpo run as it was trained
    [report_file] = (root / "eval_output").glob("*/report.json")
    report = json.loads(report_file.read_text())["datasets"]
    assert report["textvqa"]["primary"] == "vqa_acc" and report["textvqa"]["metrics"]["vqa_acc"]["n"] == 2
    assert report["coco_caption"]["metrics"]["cider"]["n"] == 2


def _export_step(root: Path, sft_run: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("gptqmodel") is None or importlib.util.find_spec("optimum") is None:
        done = subprocess.run([*_swiftall(), *EXPORT.split()], cwd=root, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2 and "pip install" in done.stderr and "Traceback" not in done.stderr, done.stderr
        return
    done = _run(root, [*_swiftall(), *EXPORT.split()], timeout=1200)
    assert f"merged {sft_run.resolve()} into the base first" in done.stderr
    out = root / "exported_qwen_vl_gptq"
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["bits"] == 4 and config["model_type"] == "qwen2_vl"
    from safetensors import safe_open

    names = set()
    for shard in out.glob("*.safetensors"):
        with safe_open(str(shard), "pt") as f:
            names |= set(f.keys())
    assert any(n.endswith("q_proj.qweight") for n in names)             # the language model is quantized
    assert any("visual" in n and n.endswith("qkv.weight") for n in names)  # the vision tower is kept as it was
    assert not any("visual" in n and n.endswith("qweight") for n in names)


def _webui_step(root: Path) -> None:
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    ui = subprocess.Popen([*_swiftall(), *WEBUI.format(port=port).split()], cwd=root, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # Ctrl-C even under nohup/&
    try:
        line = ui.stdout.readline()
        assert line.startswith("swiftall webui: http://"), (line, ui.stderr.read() if ui.poll() is not None else "")
        with urllib.request.urlopen(line.split(": ", 1)[1].strip(), timeout=60) as page:
            assert page.status == 200
        deadline = time.time() + 300
        seen = ""
        while time.time() < deadline and "model loaded" not in seen:  # the command line's model, preloaded
            seen += ui.stderr.readline()
            assert ui.poll() is None, seen[-3000:]
        assert "model loaded" in seen, seen[-3000:]
        ui.send_signal(signal.SIGINT)
        assert ui.wait(timeout=60) == 0
    finally:
        if ui.poll() is None:
            ui.kill()


# ---- pieces: --train_dataset NAME beside a local path --------------------------------------------------------
def test_a_name_beside_a_local_path_is_the_datas_name_never_a_silent_mix():
    from swiftall.data.sources import split_placeholder_names

    kinds = {"samples": None, "./processed_data": "path", "alpaca-gpt4-en": "known", "org/set": "known"}
    assert split_placeholder_names(["samples", "./processed_data"], kinds.get) == (["./processed_data"], ["samples"])
    assert split_placeholder_names(["./processed_data", "samples"], kinds.get) == (["./processed_data"], ["samples"])
    # a registered name or a hub id beside a path is data too; a lone unknown name stays (and fails by itself)
    assert split_placeholder_names(["alpaca-gpt4-en", "./processed_data"], kinds.get) == (
        ["alpaca-gpt4-en", "./processed_data"], [])
    assert split_placeholder_names(["samples"], kinds.get) == (["samples"], [])
    assert split_placeholder_names(["samples", "org/set"], kinds.get) == (["samples", "org/set"], [])


def test_spec_kinds_and_the_flag_named_in_errors(tmp_path, monkeypatch):
    from swiftall.config import InferConfig
    from swiftall.data.sources import resolve_sources, spec_kind

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text("{}\n")
    assert spec_kind("d.jsonl") == "path" and spec_kind("d.jsonl#3") == "path"
    assert spec_kind("self-cognition") == "known" and spec_kind("org/name:sub") == "known"
    assert spec_kind("samples") is None
    cfg = InferConfig.from_any({"model": "m", "val_dataset": ["nope.jsonl"]})
    with pytest.raises(DataError, match=r"^--val_dataset nope.jsonl: no such file"):
        resolve_sources(cfg.val_dataset, cfg)


# ---- pieces: one --adapters parser, one run-folder resolver ---------------------------------------------------
def _fake_run(folder: Path, model: str, model_type: str | None = None, **extra) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/somewhere/else"}))
    (folder / "args.json").write_text(json.dumps({"model": model, "model_type": model_type, "system": None,
                                                  "model_path": model, **extra}))
    return folder


def test_adapters_are_parsed_one_way(tmp_path):
    from swiftall.tuners.runs import parse_adapters

    odd = tmp_path / "lr=1e-4"
    odd.mkdir()
    specs = parse_adapters([f"a={tmp_path}/r1", str(odd), f"{tmp_path}/r3/adapter_config.json"])
    assert [(s.name, s.named) for s in specs] == [("a", True), ("adapter1", False), ("adapter2", False)]
    assert [s.path for s in specs] == [tmp_path / "r1", odd, tmp_path / "r3"]
    assert parse_adapters([str(tmp_path)])[0].name == "default"
    with pytest.raises(ConfigError, match="'a' is given twice"):
        parse_adapters(["a=x", "a=y"])


def test_deploy_takes_the_base_from_named_runs_and_they_must_agree(tmp_path):
    from swiftall.pipelines.deploy import _default_name, adapter_names, prepare_deploy_config

    a = _fake_run(tmp_path / "run1", "smollm2-135m-instruct")
    b = _fake_run(tmp_path / "run2", "smollm2-135m-instruct")
    cfg = prepare_deploy_config({"adapters": [f"a={a}", f"b={b}"]})
    assert cfg.model == "smollm2-135m-instruct" and adapter_names(cfg.adapters) == (["a", "b"], True)
    unnamed = prepare_deploy_config({"adapters": [str(a / "adapter_config.json")]})
    assert unnamed.adapters == [str(a)] and _default_name(unnamed) == "smollm2-135m-instruct"  # the registered name
    other = _fake_run(tmp_path / "run3", str(tmp_path / "another-model"))
    with pytest.raises(ConfigError, match="trained on different base models") as info:
        prepare_deploy_config({"adapters": [f"a={a}", f"c={other}"]})
    assert f"c={other}" in str(info.value) and "another-model" in str(info.value)
    with pytest.raises(ConfigError, match=f"--adapters a={tmp_path}/none: no such folder"):
        prepare_deploy_config({"adapters": [f"a={tmp_path}/none"]})
    relative = _fake_run(tmp_path / "run4", "my-local-model")  # a base folder given relative to another folder
    with pytest.raises(ConfigError, match="its base model my-local-model .* is not found from"):
        prepare_deploy_config({"adapters": [str(relative)]})


def test_dpo_from_an_sft_run_takes_its_base_and_keeps_model_type_as_the_family(tmp_path):
    from swiftall.config import DpoConfig
    from swiftall.pipelines.rlhf import _start_model

    base = tmp_path / "base"
    base.mkdir()
    run = _fake_run(tmp_path / "sft", str(base), "qwen2_vl", start_adapters=[])
    cfg = DpoConfig.from_any({"model_type": "qwen2_vl", "sft_model_path": str(run), "dataset": ["x.jsonl"]})
    assert _start_model(cfg) == (str(run.resolve()),)
    assert cfg.model == str(base) and cfg.model_type == "qwen2_vl"
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    cfg = DpoConfig.from_any({"model_type": "qwen2_vl", "sft_model_path": str(full), "dataset": ["x.jsonl"]})
    assert _start_model(cfg) == () and cfg.model == str(full) and cfg.model_type == "qwen2_vl"


# ---- prepare: rows that resolve, drops that are not written, a cache sft finds -------------------------------
def test_prepared_media_paths_resolve_from_the_prepared_file(tmp_path, monkeypatch):
    from swiftall.pipelines.prepare import prepare_main

    monkeypatch.chdir(tmp_path)
    _write_tutorial_data(tmp_path, n=1)
    prepare_main(PREPARE.split()[1:])
    [row] = [json.loads(line) for line in (tmp_path / "processed_data" / "train.jsonl").read_text().splitlines()]
    assert row["images"] == [str(tmp_path / "data" / "img" / "0.png")] and row["source"] == "data/train.jsonl:1"
    monkeypatch.chdir(tmp_path / "data")  # read again from elsewhere: the same file
    from swiftall.config import SftConfig
    from swiftall.data.build import canonical_datasets
    from swiftall.data.report import DataReport

    cfg = SftConfig.from_any({"model": "m", "dataset": [str(tmp_path / "processed_data")]})
    train, _ = canonical_datasets(cfg, DataReport())
    assert json.loads(train[0]["sample"])["images"] == row["images"]


def test_prepare_writes_no_row_it_reports_dropped_and_sft_finds_its_cache(tiny_dir, tmp_path, monkeypatch):
    from swiftall.config import SftConfig
    from swiftall.data.build import build_datasets
    from swiftall.data.report import TOO_LONG
    from swiftall.models import load_tokenizer, resolve_model
    from swiftall.pipelines.prepare import prepare_main
    from swiftall.templates import get_template

    monkeypatch.chdir(tmp_path)
    rows = [{"query": f"Question {i}?", "response": f"Answer {i}."} for i in range(3)]
    rows.insert(1, {"query": "long " * 300, "response": "too long to keep."})
    Path("data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = prepare_main(["--dataset", "data.jsonl", "--model", str(tiny_dir), "--max_length", "64",
                            "--output_dir", "prepared"])
    assert summary["report"]["kept"] == 3 and summary["report"]["dropped"] == {TOO_LONG: 1}
    written = [json.loads(line)["source"] for line in Path("prepared/train.jsonl").read_text().splitlines()]
    assert written == ["data.jsonl:1", "data.jsonl:3", "data.jsonl:4"]  # data.jsonl:2 was dropped: not written
    marker = json.loads(Path("prepared/swiftall_prepared.json").read_text())
    assert marker["rows"] == {"train": 3}
    [encoded] = list(Path("prepared/encoded").iterdir())
    info = resolve_model(str(tiny_dir))
    template = get_template(load_tokenizer(info), info, max_length=64)
    for spec in ("./prepared", str(tmp_path / "prepared")):  # however the folder is written, sft finds the cache
        cfg = SftConfig.from_any({"model": str(tiny_dir), "dataset": ["samples", spec], "max_length": 64,
                                  "dataset_cache_dir": str(tmp_path / "global")})
        built = build_datasets(cfg, template)
        assert built.from_cache and built.cache_dir.resolve() == encoded.resolve() and len(built.train) == 3


# ---- newcomer items ----------------------------------------------------------------------------------------
def test_batch_results_keep_the_reference_as_labels():
    from swiftall.data.results import result_row

    assert result_row({"query": "q", "response": "ref"}, "ans") == {"query": "q", "response": "ans", "labels": "ref"}
    chat = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ref"}]}
    assert result_row(chat, "ans")["labels"] == "ref" and result_row(chat, "ans")["response"] == "ans"
    assert "labels" not in result_row({"query": "q"}, "ans")


def test_export_of_a_checkpoint_goes_beside_the_run(tmp_path):
    from swiftall.pipelines.common import beside_run
    from swiftall.pipelines.export import _default_out

    assert beside_run(f"{tmp_path}/run1/checkpoint-3", "merged") == tmp_path / "run1-checkpoint-3-merged"
    assert beside_run(f"a={tmp_path}/run1/", "gptq") == tmp_path / "run1-gptq"
    cfg = type("Cfg", (), {"output_dir": None, "adapters": [f"{tmp_path}/run1/checkpoint-3"]})()
    assert _default_out(cfg, "merged") == tmp_path / "run1-checkpoint-3-merged"  # what export writes to


def test_deploy_finds_a_port_in_use_before_loading(monkeypatch, capsys):
    import socket

    from swiftall.cli.main import main
    from swiftall.pipelines import deploy

    monkeypatch.setattr(deploy, "build_app", lambda cfg: pytest.fail("the model loaded before the port was checked"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["deploy", "--model", "smollm2-135m-instruct", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}: 127.0.0.1:{port} is in use" in err and "Traceback" not in err


def test_text_only_model_with_images_is_refused_before_loading(tiny_dir, tmp_path, monkeypatch):
    from swiftall.pipelines import infer

    monkeypatch.setattr(infer, "build_engine", lambda cfg: pytest.fail("weights loaded before the check"))
    image = write_image(tmp_path / "cat.png")
    with pytest.raises(ConfigError, match="text-only model .* images were given"):
        infer.infer_main(["--model", str(tiny_dir), "--query", "What is this?<image>", "--images", str(image)])


def test_download_offline_does_not_suggest_itself(capsys, tmp_path, monkeypatch):
    from swiftall.cli.main import main

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert main(["download", "--model", "someorg/missing-model"]) == 2
    err = capsys.readouterr().err
    assert "someorg/missing-model" in err and "offline mode is on" in err and "download --model" not in err


def test_demo_takes_flags_and_help(tmp_path, monkeypatch, capsys):
    from swiftall.cli.main import main
    from swiftall.pipelines.demo import demo_config

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--help"]) == 0
    assert "--output_dir" in capsys.readouterr().out and not list(tmp_path.iterdir())
    cfg = demo_config(["--output_dir", "x", "--num_train_epochs", "1"])
    assert cfg.output_dir == "x" and cfg.num_train_epochs == 1 and cfg.dataset == ["self-cognition", "swiftall-demo"]
    assert main(["demo", "x"]) == 2 and "give flags" in capsys.readouterr().err


def test_model_list_columns_fit_long_family_names(capsys):
    from swiftall.cli.main import main

    assert main(["model", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines[0].index("hugging face id")
    assert all(line[start - 2:start] == "  " and line[start] != " " for line in lines[1:]), lines
    assert any("qwen2_5_omni" in line for line in lines)


def test_the_python_api_hides_library_warnings_but_not_the_users_own():
    code = ("import warnings, swiftall\n"
            "swiftall.InferRequest\n"                      # first use of the public API
            "import transformers.utils.generic as lib\n"
            "warnings.warn_explicit('deprecated inside a library', FutureWarning, lib.__file__, 1, module=lib.__name__)\n"
            "warnings.warn('my own deprecation', FutureWarning)\n")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "my own deprecation" in quiet.stderr and "deprecated inside a library" not in quiet.stderr, quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "SWIFTALL_VERBOSE": "1"})
    assert "deprecated inside a library" in loud.stderr, loud.stderr


def test_a_lora_run_given_as_the_model_is_served_as_an_adapter_on_its_base(tmp_path):
    from types import SimpleNamespace

    from swiftall.pipelines.common import fill_model_from_run

    run = _fake_run(tmp_path / "dpo", "smollm2-135m-instruct", "qwen2_vl")
    cfg = SimpleNamespace(model=str(run), model_type="qwen2_vl", adapters=[], system=None)
    fill_model_from_run(cfg)   # ms-swift's `--model_path ./output_dpo` for eval, export and webui
    assert cfg.model == "smollm2-135m-instruct" and cfg.adapters == [str(run)] and cfg.model_type == "qwen2_vl"
    full = tmp_path / "full"
    full.mkdir()
    (full / "config.json").write_text("{}")
    cfg = SimpleNamespace(model=str(full), model_type=None, adapters=[], system=None)
    fill_model_from_run(cfg)
    assert cfg.model == str(full) and cfg.adapters == []
