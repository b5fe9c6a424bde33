"""Steps shared by the pipelines: model resolution from configs and from run folders."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..models import ModelInfo, resolve_model
from ..models.registry import get_model_meta
from ..tuners.runs import Run, agreed_base, parse_adapters, read_run, run_args  # noqa: F401  (run_args re-exported)
from ..utils.errors import ConfigError
from ..utils.log import get_logger

logger = get_logger(__name__)


def model_info(cfg: Any) -> ModelInfo:
    return resolve_model(cfg.model, cfg.model_type, hub=cfg.hub, revision=cfg.revision)


def seed_everything(seed: int) -> None:
    """Python, numpy and torch seeded before anything random is built (LoRA's A matrices, new heads)."""
    from transformers import set_seed

    set_seed(int(seed))


def counted(n: int, word: str) -> str:
    """'1 step', '4 steps'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def is_adapter_dir(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def names_a_model(model_type: Any) -> bool:
    """--model_type alone selects a model when it is a registered model name (not just a family)."""
    return bool(model_type) and get_model_meta(model_type) is not None


def take_base_from_run(cfg: Any, run: Run) -> None:
    """Fill --model (and --model_type, --system when not given) from an adapter run; --model_type given by the
    user stays, as the family/template to use."""
    cfg.model = run.base
    if not cfg.model_type:
        cfg.model_type = run.model_type
    if hasattr(cfg, "system") and cfg.system is None:
        cfg.system = run.system


def adapter_run_as_model(cfg: Any) -> None:
    """--model (ms-swift's --model_path) naming a LoRA run folder, as ms-swift's tutorial passes its output to eval,
    export and webui: the run is the adapter and its base the model, exactly as --adapters RUN (so an adapter
    trained on top of an sft run gets that run merged first, as in training)."""
    model = getattr(cfg, "model", None)
    if not isinstance(model, str) or not model or not is_adapter_dir(model) or (Path(model) / "config.json").is_file():
        return
    logger.info(f"--model {model} is a LoRA run: serving it as --adapters {model} on the base model it was trained on")
    cfg.adapters = [model, *(cfg.adapters or [])]
    cfg.model = None


def fill_model_from_run(cfg: Any) -> None:
    """`--adapters DIR ...` without --model: the base model (and its settings) from the runs' args.json; every
    adapter must have been trained on the same base. Values are normalised (RUN/adapter_config.json -> RUN)."""
    adapter_run_as_model(cfg)
    if not cfg.adapters:
        return
    specs = parse_adapters(cfg.adapters)
    cfg.adapters = [spec.normalized for spec in specs]
    if cfg.model or names_a_model(cfg.model_type):
        return
    runs = [(f"--adapters {s.item}", read_run(s.path, f"--adapters {s.item}")) for s in specs]
    take_base_from_run(cfg, agreed_base(runs))


def split_full_runs(cfg: Any) -> None:
    """A full fine-tuning run folder passed as --adapters is a model, not an adapter."""
    if not cfg.adapters or cfg.model:
        return
    first = parse_adapters(cfg.adapters)[0]
    if not first.named and not is_adapter_dir(first.path) and (first.path / "config.json").is_file():
        cfg.model = str(first.path)
        cfg.adapters = list(cfg.adapters[1:])


MEDIA_KINDS = ("images", "audios", "videos")


def check_media_before_loading(cfg: Any, media: dict[str, list], requests: Any = ()) -> None:
    """Images/audios/videos (from --images/--audios/--videos or from rows) for a text-only model are refused
    before its weights load."""
    given = {k for k, v in (media or {}).items() if v}
    given |= {k for request in requests or () for k in MEDIA_KINDS if getattr(request, k, None)}
    if not given:
        return
    info = model_info(cfg)
    family = info.family
    if family is not None and (family.multimodal or family.template_class):
        return
    kind = f"family {family.name}" if family is not None else "no multimodal family"
    raise ConfigError(f"{info.name} is a text-only model ({kind}) but {', '.join(sorted(given))} were given; use a "
                      "multimodal model (swiftall model list) or leave the media out")


def beside_run(adapter_item: str, suffix: str) -> Path:
    """Where an export of an --adapters value goes by default: RUN-<suffix> beside RUN, and
    RUN-checkpoint-N-<suffix> beside RUN for a checkpoint (never inside the run folder, which infer and
    --resume_from_checkpoint read)."""
    adapter = parse_adapters([adapter_item])[0].path.resolve()
    if re.fullmatch(r"checkpoint-\d+", adapter.name):
        return adapter.parent.parent / f"{adapter.parent.name}-{adapter.name}-{suffix}"
    return adapter.parent / f"{adapter.name}-{suffix}"
