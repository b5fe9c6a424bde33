"""The machine a plan is for: detected (GPUs, CPU cores, RAM, free disk, bf16, installed engines), or described by
flags (--device cuda --memory_gb 24) for planning another machine."""
from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..utils import env

GIB = 2 ** 30
ENGINES = ("vllm", "sglang", "lmdeploy", "deepspeed", "flash_attn", "bitsandbytes", "llama_cpp", "torch_npu")


@dataclass(frozen=True)
class Device:
    kind: str           # cuda, mps, npu, cpu
    name: str
    total_gib: float
    free_gib: float
    bf16: bool = False


@dataclass(frozen=True)
class Machine:
    devices: tuple[Device, ...]
    cores: int = 1
    ram_total_gib: float = 0.0
    ram_free_gib: float = 0.0
    disk_free_gib: float = 0.0
    engines: tuple[str, ...] = field(default=())
    detected: bool = True

    @property
    def accelerator(self) -> Optional[Device]:
        return next((d for d in self.devices if d.kind != "cpu"), None)

    @property
    def device(self) -> str:
        return "cuda" if self.accelerator is not None else "cpu"

    @property
    def budget_gib(self) -> float:
        """Memory a run may use: the first accelerator's free memory, else the RAM available now."""
        acc = self.accelerator
        return acc.free_gib if acc is not None else self.ram_free_gib

    @property
    def bf16(self) -> bool:
        acc = self.accelerator
        return bool(acc and acc.bf16)

    def describe(self) -> list[str]:
        lines = [f"{d.kind} {d.name}: {d.free_gib:.1f} of {d.total_gib:.1f} GiB free" + (", bf16" if d.bf16 else "")
                 for d in self.devices if d.kind != "cpu"]
        lines.append(f"CPU: {self.cores} cores, RAM {self.ram_free_gib:.1f} of {self.ram_total_gib:.1f} GiB available"
                     + (f", {self.disk_free_gib:.0f} GiB free disk at the cache" if self.disk_free_gib else ""))
        lines.append("engines: " + (", ".join(self.engines) or "none of " + ", ".join(ENGINES)))
        return lines


def given_machine(device: str, memory_gb: float, name: str = "") -> Machine:
    """A machine described by flags: one device with this much free memory (GB as vendors count, 10^9 bytes)."""
    gib = memory_gb * 1e9 / GIB
    if device == "cpu":
        return Machine((Device("cpu", name or "cpu", gib, gib),), ram_total_gib=gib, ram_free_gib=gib,
                       detected=False)
    return Machine((Device("cuda", name or f"GPU {memory_gb:g} GB", gib, gib, bf16=True),), detected=False)


def detect_machine(with_gpus: bool = True) -> Machine:
    import psutil

    memory = psutil.virtual_memory()
    devices = list(_gpus()) if with_gpus else []
    devices.append(Device("cpu", "cpu", memory.total / GIB, memory.available / GIB))
    engines = tuple(e for e in ENGINES if importlib.util.find_spec(e) is not None)
    return Machine(tuple(devices), cores=env.usable_cpus(), ram_total_gib=memory.total / GIB,
                   ram_free_gib=memory.available / GIB, disk_free_gib=_disk_free(env.cache_root()), engines=engines)


def _disk_free(path: Path) -> float:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / GIB


def _gpus():
    """CUDA devices with free/total memory; MPS and NPU where present. torch is imported only here."""
    if importlib.util.find_spec("torch") is None:
        return
    import torch

    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            yield Device("cuda", torch.cuda.get_device_name(i), total / GIB, free / GIB,
                         bf16=torch.cuda.get_device_capability(i)[0] >= 8)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        import psutil

        total = psutil.virtual_memory().total / GIB  # unified memory
        yield Device("mps", "Apple GPU", total, psutil.virtual_memory().available / GIB, bf16=True)
    elif importlib.util.find_spec("torch_npu") is not None:
        import torch_npu  # noqa: F401

        for i in range(torch.npu.device_count()):
            free, total = torch.npu.mem_get_info(i)
            yield Device("npu", torch.npu.get_device_name(i), total / GIB, free / GIB, bf16=True)
