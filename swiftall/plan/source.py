"""Where the planner gets a model's config.json, without weights: a local folder, the stored table of registered
names (offline), or the hub (only config.json, through huggingface_hub's hf_hub_download)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from ..models.registry import get_model_meta, list_models
from ..utils import env
from ..utils.errors import ConfigError, ModelNotFoundError
from .known import known_config
from .spec import ModelSpec, spec_from_config


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the model config ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of model settings")
    return data


def registered_name(model: str) -> Optional[str]:
    """The registered name of a name, alias or hub id (Qwen/Qwen2.5-7B-Instruct -> qwen2.5-7b-instruct)."""
    meta = get_model_meta(model)
    if meta is not None:
        return meta.name
    lowered = model.lower()
    for meta in list_models():
        if lowered in ((meta.hf_id or "").lower(), (meta.ms_id or "").lower()):
            return meta.name
    return None


def model_spec(model: Optional[str], model_type: Optional[str] = None, hub: str = "huggingface",
               revision: Optional[str] = None) -> ModelSpec:
    """The shape of --model (or a --model_type that names a registered model)."""
    value = model or model_type
    if not value:
        raise ConfigError("swiftall plan: --model is required (a folder, a registered name or a hub id)")
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"--model {value}: the folder has no config.json")
        return spec_from_config(path.name, read_json(path / "config.json"), source=str(path / "config.json"))
    if path.suffix == ".gguf":
        raise ConfigError(f"--model {value}: the planner reads config.json; give the model's folder or its "
                          "registered name")
    name = registered_name(value)
    stored = known_config(name) if name else None
    if stored is not None:
        return spec_from_config(name, stored)
    meta = get_model_meta(name) if name else None
    repo = (meta.hf_id if meta else None) or value
    if "/" not in repo:
        raise ModelNotFoundError(f"--model {value}: not a folder, a registered name (swiftall model list) or a hub "
                                 "id of the form org/name")
    return spec_from_config(name or repo, hub_config(repo, hub, revision), source=f"{repo} (config.json)")


def hub_config(repo: str, hub: str, revision: Optional[str]) -> dict[str, Any]:
    """config.json only: from the cache, or fetched when online."""
    if hub == "modelscope":
        raise ModelNotFoundError(f"--model {repo}: the planner fetches configs from the Hugging Face Hub only; "
                                 "download the model first (swiftall download --hub modelscope) and give its folder")
    from huggingface_hub import hf_hub_download

    offline = env.hf_offline()
    try:
        path = hf_hub_download(repo, "config.json", revision=revision, local_files_only=offline,
                               cache_dir=env.hf_cache_dir())
    except Exception as exc:  # offline and uncached, no such repository, gated, no network
        how = "offline mode is on (HF_HUB_OFFLINE) and it is not cached" if offline else \
            f"the Hugging Face Hub did not provide it ({type(exc).__name__})"
        raise ModelNotFoundError(f"--model {repo}: no config.json: {how}. Give a local model folder, or a registered "
                                 "name (swiftall model list), which plans offline") from None
    return read_json(Path(path))
