"""Resolve a --model value to a local Hugging Face folder through the real hub clients."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..utils import env
from ..utils.errors import ModelNotFoundError
from ..utils.optional import require


def looks_like_hub_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "/", "~"))


def resolve_model_dir(model: str, hub: str = "huggingface", revision: Optional[str] = None,
                      download: bool = True) -> Path:
    """A local folder, a .gguf file, or a hub id -> a local folder holding config.json."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        if path.suffix == ".gguf":
            from .gguf import convert_gguf

            return convert_gguf(path)
        raise ModelNotFoundError(f"--model {model}: a file, but not a .gguf; give a model folder, a .gguf file or a hub id")
    if not looks_like_hub_id(model):
        raise ModelNotFoundError(f"--model {model}: no such folder or file, and not a hub id of the form 'org/name' "
                                 "nor a registered name (see: swiftall model list)")
    return download_model(model, hub=hub, revision=revision, local_only=not download or env.hf_offline())


def download_model(model_id: str, hub: str = "huggingface", revision: Optional[str] = None,
                   local_only: bool = False) -> Path:
    if hub == "modelscope":
        return _modelscope(model_id, revision, local_only)
    return _huggingface(model_id, revision, local_only or env.hf_offline())


def _huggingface(model_id: str, revision: Optional[str], local_only: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    cache = env.hf_cache_dir() or HF_HUB_CACHE
    try:
        return Path(snapshot_download(model_id, revision=revision, local_files_only=local_only, cache_dir=cache))
    except Exception as exc:  # LocalEntryNotFoundError, RepositoryNotFoundError, connection errors
        how = ("offline mode is on (HF_HUB_OFFLINE)" if local_only else "the Hugging Face Hub could not be reached "
               "or has no such repository")
        raise _not_found(
            f"model '{model_id}' is not in the Hugging Face cache ({cache}) and {how}: {type(exc).__name__}. "
            f"Fetch it on a connected machine with 'swiftall download --model {model_id}', or pass a local folder "
            "or .gguf file to --model.", model_id, str(cache), local_only) from None


def _modelscope(model_id: str, revision: Optional[str], local_only: bool) -> Path:
    require("modelscope", "modelscope", "ModelScope downloads")
    from modelscope.hub.snapshot_download import snapshot_download

    cache = env.modelscope_cache_dir()
    kwargs = {"revision": revision} if revision else {}
    if local_only:
        kwargs["local_files_only"] = True
    try:
        return Path(snapshot_download(model_id, cache_dir=cache, **kwargs))
    except Exception as exc:
        where = cache or "~/.cache/modelscope/hub"
        raise _not_found(
            f"model '{model_id}' is not in the ModelScope cache ({where}) and ModelScope could not provide it "
            f"({type(exc).__name__}: {str(exc)[:200]}). Fetch it on a connected machine with "
            f"'swiftall download --model {model_id} --hub modelscope', or pass a local folder.", model_id, where,
            local_only) from None


def _not_found(message: str, model_id: str, cache: str, offline: bool) -> ModelNotFoundError:
    """The error, with what a caller needs to give its own advice (`swiftall download` must not suggest itself)."""
    error = ModelNotFoundError(message)
    error.model_id, error.cache, error.offline = model_id, cache, offline  # type: ignore[attr-defined]
    return error
