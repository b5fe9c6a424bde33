"""`swiftall <command> [--flags]`. Commands are looked up in a table and imported on demand, so
`swiftall --help` and `swiftall <cmd> --help` never import torch."""
from __future__ import annotations

import importlib
import sys
from typing import Optional

from ..config.base import suggest
from ..utils.errors import SwiftallError

# command -> (config class in swiftall.config, pipeline module, entry function, one-line description)
COMMANDS: dict[str, tuple[Optional[str], str, str, str]] = {
    "sft": ("SftConfig", "swiftall.pipelines.sft", "sft_main", "fine-tune a model (full or LoRA)"),
    "eval": ("EvalConfig", "swiftall.pipelines.eval", "eval_main",
             "score a model on benchmarks or local files; eval diff RUN_A RUN_B compares two runs"),
    "pt": ("PtConfig", "swiftall.pipelines.pt", "pt_main", "continued pre-training on plain text"),
    "tuners": (None, "swiftall.cli.tuners", "tuners_command", "the tuners and what each combines with"),
    "rlhf": ("RlhfConfig", "swiftall.pipelines.rlhf", "rlhf_main",
             "align: dpo, kto, cpo, simpo, orpo, rm, ppo, grpo, gkd"),
    "dpo": ("DpoConfig", "swiftall.pipelines.rlhf", "dpo_main", "DPO (shortcut of rlhf --rlhf_type dpo)"),
    "infer": ("InferConfig", "swiftall.pipelines.infer", "infer_main", "chat on the terminal or answer a dataset"),
    "export": ("ExportConfig", "swiftall.pipelines.export", "export_main", "merge LoRA adapters into a model"),
    "download": ("DownloadConfig", "swiftall.pipelines.download", "download_main", "fetch a model into the cache"),
    "prepare": ("PrepareConfig", "swiftall.pipelines.prepare", "prepare_main",
                "validate data, write canonical rows and the encoded cache, report"),
    "template": ("TemplateShowConfig", "swiftall.pipelines.template_show", "template_main",
                 "show encoded rows with trained tokens marked: swiftall template show"),
    "deploy": ("DeployConfig", "swiftall.pipelines.deploy", "deploy_main", "serve a model over an OpenAI-compatible API"),
    "webui": ("WebuiConfig", "swiftall.pipelines.webui", "webui_main", "a web page: chat, train, runs, export, deploy"),
    "model": (None, "swiftall.cli.listing", "model_command", "list registered models: swiftall model list"),
    "dataset": (None, "swiftall.cli.listing", "dataset_command", "list registered datasets: swiftall dataset list"),
    "plan": ("PlanConfig", "swiftall.pipelines.plan", "plan_main",
             "memory and time of a run from the model's config, before it runs: swiftall plan sft --model M ..."),
    "init": ("InitConfig", "swiftall.pipelines.init", "init_main",
             "set up a first run: detect the machine, pick a model that fits, write swiftall.yaml"),
    "demo": (None, "swiftall.pipelines.demo", "demo_main", "the end-to-end demo on the embedded model"),
    "doctor": (None, "swiftall.cli.doctor", "doctor_command",
               "check what a run needs: package versions; --dist: master port, output folder, gloo all-reduce"),
}


def usage() -> str:
    lines = ["usage: swiftall <command> [--flag value ...] [--config run.yaml]", "", "commands:"]
    lines += [f"  {name:<10} {spec[3]}" for name, spec in COMMANDS.items()]
    lines += ["", "swiftall <command> --help lists that command's flags."]
    return "\n".join(lines)


def _end_process_group() -> None:
    """A finished multi-process run leaves its process group explicitly (PyTorch warns when a process exits with one
    still open), then the process ends without the interpreter's teardown. Everything is written by then; but under
    DeepSpeed ZeRO-3 on gloo, a C++ thread left joinable aborted rank 1 at that teardown in about 1 run in 25
    ("terminate called without an active exception", SIGABRT), which turned a finished run into a failed one."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        import logging
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(version("swiftall"))
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"swiftall: unknown command '{command}'{suggest(command, COMMANDS).replace('--', '')}\n\n{usage()}",
              file=sys.stderr)
        return 2
    config_name, module, function, _ = COMMANDS[command]
    try:
        if config_name and any(a in ("-h", "--help") for a in rest):
            from .. import config as configs
            from ..config.argv import print_help

            print_help(getattr(configs, config_name))
            return 0
        from ..utils.env import choose_openmp_waits
        from ..utils.quiet import quiet_libraries, verbose_in

        choose_openmp_waits()  # before torch loads OpenMP

        quiet_libraries(verbose_in(rest))  # library deprecation notes hidden unless --verbose
        from .launch import maybe_relaunch

        if config_name and (code := maybe_relaunch(command, rest, _config_class(config_name))) is not None:
            return code  # ran under torchrun (--nproc_per_node / NPROC_PER_NODE)
        entry = getattr(importlib.import_module(module), function)
        entry(rest)
        _end_process_group()
        return 0
    except SwiftallError as exc:
        from .launch import rank_label

        message = str(exc).removeprefix(f"swiftall {command}: ")
        print(f"swiftall {command}{rank_label()}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nswiftall {command}: interrupted", file=sys.stderr)
        return 130


def _config_class(name: str) -> type:
    from .. import config as configs

    return getattr(configs, name)


if __name__ == "__main__":  # python -m swiftall.cli.main
    sys.exit(main())
