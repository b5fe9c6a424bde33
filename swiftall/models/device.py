"""Device, dtype and thread settings."""
from __future__ import annotations

from ..utils import env
from ..utils.log import get_logger

logger = get_logger(__name__)


def configure_threads() -> int:
    """Use the CPUs this process may run on, shared among local ranks (oversubscription is very slow)."""
    import torch

    threads = max(1, env.usable_cpus() // env.local_world_size())
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def resolve_dtype(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def resolve_attn(impl: str | None) -> str:
    if impl in (None, "", "auto"):
        return "sdpa"
    if impl.startswith("flash_attention"):
        import importlib.util

        import torch

        module = "flash_attn_interface" if impl == "flash_attention_3" else "flash_attn"
        if not torch.cuda.is_available() or importlib.util.find_spec(module) is None:
            logger.info(f"{impl} needs a GPU with the '{module}' package; using sdpa attention instead")
            return "sdpa"
    return impl


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
