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
    name = _attn_name(impl)
    if name == "sdpa":
        avoid_cudnn_sdpa()
    return name


def _attn_name(impl: str | None) -> str:
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


def avoid_cudnn_sdpa() -> bool:
    """On a CUDA machine, take cuDNN out of SDPA's backends (flash and memory-efficient attention stay); returns
    whether it did. PyTorch tries cuDNN first on Hopper and newer, and cuDNN builds an execution plan for every
    (batch, length) it has not seen: about 8 ms of CPU per attention call in training (measured on an H200:
    padded LoRA SFT of SmolLM2-135M spent 70% of its CPU time there, on 6-15 us of GPU work per call), and by the
    same rule a plan per generated token in decoding, where the cached length grows by one each step. Training
    rows, per-sample padding-free slices and KV caches all change length all the time, so the flash kernel is the
    better choice."""
    import torch

    if not torch.cuda.is_available() or not torch.backends.cuda.cudnn_sdp_enabled():
        return False
    torch.backends.cuda.enable_cudnn_sdp(False)
    logger.debug("SDPA: cuDNN attention off (a plan per new shape); flash / memory-efficient kernels used")
    return True


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
