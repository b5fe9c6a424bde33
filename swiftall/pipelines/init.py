"""swiftall init: a terminal wizard for a first run. It detects the machine, asks the goal and the modality, lists
the registered models that fit with the planner's numbers (those that do not, dimmed with the reason), recommends
precision and method, fetches the model only when allowed and after saying what and how much, writes swiftall.yaml
for the chosen command, and prints the one line that runs it. `--yes` asks nothing. Nothing is written until the
end, and then atomically: Ctrl-C at any prompt leaves no file behind."""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..config import InitConfig
from ..config.plan import GOALS, MODALITIES
from ..models.registry import get_model_meta, list_models
from ..plan import Choice, Machine, machine_for, model_spec, recommend, smallest_need
from ..plan.fit import HEADROOM
from ..plan.known import KNOWN
from ..plan.setting import Setting
from ..utils import env
from ..utils.errors import ConfigError
from .init_yaml import COMMAND_OF_GOAL, HEADER, run_line, yaml_for

GOAL_TEXT = {"chat": "chat with a model", "finetune": "fine-tune a model on your data", "align": "align a model "
             "with preference pairs (DPO)", "serve": "serve a model over an OpenAI-compatible API",
             "evaluate": "score a model on a benchmark"}
TASK_OF_GOAL = {"chat": "infer", "finetune": "sft", "align": "rlhf", "serve": "infer", "evaluate": "infer"}
MODALITY_OF = {"text": ("text",), "image": ("image", "video"), "audio": ("audio",), "video": ("video",)}


@dataclass
class Candidate:
    name: str
    params_b: float
    where: str                    # embedded, cached, download (N GB), or why it is not offered
    available: bool
    choice: Optional[Choice]
    reason: str = ""              # why it is not offered


def init_main(config: Any = None) -> dict[str, Any]:
    cfg = InitConfig.from_any(config)
    ui = Prompter(assume_yes=cfg.yes)
    machine = machine_for(cfg.device, cfg.memory_gb)
    ui.say("This machine:" if machine.detected else "The machine planned for:")
    for line in machine.describe():
        ui.say(f"  {line}")
    goal = cfg.goal or ui.choose("What do you want to do?", GOALS, GOAL_TEXT, default="finetune")
    modality = cfg.modality or ui.choose("What does the model read?", MODALITIES, {}, default="text")
    task = TASK_OF_GOAL[goal]
    candidates = list_candidates(cfg, machine, task, modality)
    offered = [c for c in candidates if c.available and c.choice]
    show_candidates(ui, candidates, machine)
    if not offered:
        raise ConfigError(no_model_message(candidates, machine, cfg))
    picked = pick(ui, offered, machine, cfg.model)
    for reason in picked.choice.reasons:
        ui.say(f"  - {reason}")
    fetch(ui, picked, cfg)
    target = write_config(ui, cfg, goal, picked)
    line = run_line(COMMAND_OF_GOAL[goal], target)
    ui.say(f"\nWrote {target}. Run it with:\n  {line}")
    return {"config": str(target), "command": line, "model": picked.name, "goal": goal,
            "setting": picked.choice.setting.describe(), "peak_gib": picked.choice.plan.peak_gib}


class Prompter:
    """Numbered choices on the terminal; --yes takes each default without asking."""

    def __init__(self, assume_yes: bool):
        self.assume_yes = assume_yes
        self.dim = sys.stdout.isatty() and not env.no_color()

    def say(self, text: str = "", dim: bool = False) -> None:
        print(f"\033[2m{text}\033[0m" if dim and self.dim else text, flush=True)

    def ask(self, question: str, default: str) -> str:
        if self.assume_yes:
            return default
        try:
            answer = input(f"{question} [{default}]: ").strip()
        except EOFError:
            raise KeyboardInterrupt from None  # input closed: nothing is written, as with Ctrl-C
        return answer or default

    def choose(self, question: str, options: Any, labels: dict, default: str) -> str:
        options = list(options)
        self.say(question)
        for i, option in enumerate(options, 1):
            self.say(f"  {i}) {option}" + (f" - {labels[option]}" if option in labels else ""))
        while True:
            answer = self.ask("Choose a number or a name", str(options.index(default) + 1))
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return options[int(answer) - 1]
            if answer in options:
                return answer
            self.say(f"  '{answer}' is not one of the choices; type 1-{len(options)} or a name")


def list_candidates(cfg: InitConfig, machine: Machine, task: str, modality: str) -> list[Candidate]:
    names = [cfg.model] if cfg.model else [m.name for m in list_models()
                                          if m.name in KNOWN and KNOWN[m.name][10] in MODALITY_OF[modality]]
    length = 2048 if machine.device != "cpu" else 512
    out = []
    for name in names:
        spec = model_spec(name)
        where, available = availability(name, cfg.allow_download, spec.total_params)
        choice = recommend(spec, machine, task=task, length=length)
        least = smallest_need(spec, Setting(task=task, device=machine.device)).peak_gib
        reason = "" if choice else (f"needs {least:.1f} GiB at the least (LoRA or QLoRA, batch 1, 256 tokens); "
                                    f"{HEADROOM * machine.budget_gib:.1f} GiB usable here")
        if not available:
            reason = reason or where
        out.append(Candidate(name, spec.total_params / 1e9, where, available, choice, reason))
    return sorted(out, key=lambda c: c.params_b)


def availability(name: str, allow_download: bool, params: float) -> tuple[str, bool]:
    """Embedded, cached, downloadable (when allowed and online), or why not."""
    meta = get_model_meta(name)
    if meta is None:  # a folder or hub id given with --model
        return ("local folder", True) if Path(name).expanduser().is_dir() else ("hub id", allow_download)
    if meta.embedded_package:
        from importlib.metadata import PackageNotFoundError, distribution

        try:
            distribution(meta.embedded_package)
            return "embedded (no download)", True
        except PackageNotFoundError:
            pass
    if meta.hf_id and hf_cached(meta.hf_id):
        return "cached", True
    size = f"{params * 2 / 1e9:.1f} GB"
    if env.hf_offline():
        return f"not cached; offline (download {size} on a connected machine)", False
    if not allow_download:
        return f"not cached (download {size}: add --allow_download true)", False
    return f"download {size} from the Hugging Face Hub", True


def hf_cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "config.json", cache_dir=env.hf_cache_dir())
    return isinstance(found, str)


def show_candidates(ui: Prompter, candidates: list[Candidate], machine: Machine) -> None:
    ui.say(f"\nRegistered models for this goal ({machine.budget_gib:.1f} GiB free on {machine.device}):")
    number = 0
    for c in candidates:
        if c.available and c.choice:
            number += 1
            plan = c.choice.plan
            ui.say(f"  {number}) {c.name:<26} {c.params_b:6.2f}B  {plan.peak_gib:6.2f} GiB  "
                   f"{c.choice.setting.describe()}  [{c.where}]")
        else:
            ui.say(f"     {c.name:<26} {c.params_b:6.2f}B  -- {c.reason}", dim=True)


def pick(ui: Prompter, offered: list[Candidate], machine: Machine, given: Optional[str]) -> Candidate:
    """The default: the embedded model on a CPU, else the largest model that fits."""
    default = next((c for c in offered if "embedded" in c.where), offered[0]) if machine.device == "cpu" \
        else offered[-1]
    if given:
        return offered[0]
    names = [c.name for c in offered]
    name = ui.choose("Which model?", names, {}, default=default.name)
    return offered[names.index(name)]


def fetch(ui: Prompter, picked: Candidate, cfg: InitConfig) -> None:
    if not picked.where.startswith("download"):
        ui.say(f"Model: {picked.name}, {picked.where}.")
        return
    meta = get_model_meta(picked.name)
    repo = meta.hf_id if meta else picked.name
    answer = ui.ask(f"{picked.where.capitalize()} ({repo}) into the cache? yes/no", "yes")
    if answer.lower() not in ("y", "yes"):
        raise KeyboardInterrupt
    from ..hub.resolve import download_model

    download_model(repo)  # huggingface_hub: resumable, with its progress bar


def write_config(ui: Prompter, cfg: InitConfig, goal: str, picked: Candidate) -> Path:
    """Write the YAML next to nothing partial: a temporary file in the same folder, checked, then renamed."""
    target = Path(cfg.write_config).expanduser()
    if target.exists():
        ours = target.read_text(errors="replace").startswith(HEADER)
        if not ours and (cfg.yes or ui.ask(f"{target} exists; overwrite it? yes/no", "no").lower() not in ("y", "yes")):
            raise ConfigError(f"--write_config {target}: the file exists and was not written by swiftall init; "
                              "name another file (--write_config other.yaml) or remove it")
    text = yaml_for(goal, picked.name, picked.choice.setting, cfg)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".swiftall-init-", suffix=".yaml", dir=target.parent)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        check_written(COMMAND_OF_GOAL[goal], Path(temp))
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target


def check_written(command: str, path: Path) -> None:
    """The file must build the command's config (the same check `swiftall <command> --config` starts with)."""
    from .. import config as configs

    name = {"sft": "SftConfig", "infer": "InferConfig", "rlhf": "RlhfConfig", "deploy": "DeployConfig",
            "eval": "EvalConfig"}[command]
    getattr(configs, name).from_any({"config": str(path)})


def no_model_message(candidates: list[Candidate], machine: Machine, cfg: InitConfig) -> str:
    fitting = [c for c in candidates if c.choice]
    if not fitting:
        smallest = min(candidates, key=lambda c: c.params_b)
        return (f"no registered model fits {machine.budget_gib:.1f} GiB free on {machine.device}: the smallest, "
                f"{smallest.name}, {smallest.reason}")
    return ("the models that fit are not cached here: " + "; ".join(f"{c.name} ({c.where})" for c in fitting[:3])
            + (". Allow a download with --allow_download true" if not env.hf_offline() else
               ". Offline: download one on a connected machine (swiftall download --model NAME)"))
