"""Quantized bases for training adapters (QLoRA and friends): --quant_method bnb|hqq|quanto|eetq|aqlm.

`check_quant` runs before anything loads and says what a method needs (a GPU, a package, an already-quantized
folder); `quantization_config` builds transformers' config; `load_base` loads the model with it and readies it
for adapter training (peft's prepare_model_for_kbit_training)."""
from __future__ import annotations

import importlib.util
import json
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from ..utils.errors import ConfigError, MissingDependencyError
from ..utils.log import get_logger

logger = get_logger(__name__)
PACKAGES = {"bnb": ("bitsandbytes", "bitsandbytes"), "hqq": ("hqq", "hqq"), "quanto": ("optimum.quanto",
            "optimum-quanto"), "eetq": ("eetq", "eetq"), "aqlm": ("aqlm", "aqlm[cpu]")}
NEEDS_GPU = {"eetq": "EETQ's int8 kernels are CUDA-only"}
QUANTO_BITS = {8: "int8", 4: "int4", 2: "int2"}
HQQ_BITS = (1, 2, 3, 4, 8)
HQQ_GROUP_SIZE = 64


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def check_quant(args: Any, model_path: Optional[Path] = None) -> None:
    """Everything that can be said about --quant_method before the model loads."""
    method = getattr(args, "quant_method", None)
    if not method:
        return
    bits = getattr(args, "quant_bits", None)
    if method in NEEDS_GPU and not _cuda():
        raise ConfigError(f"--quant_method {method} needs a GPU: {NEEDS_GPU[method]}; on this machine use "
                          "--quant_method bnb --quant_bits 4 (QLoRA runs on a CPU)")
    if method == "quanto" and bits not in QUANTO_BITS:
        raise ConfigError(f"--quant_method quanto takes --quant_bits 2, 4 or 8, got {bits}")
    if method == "hqq" and bits not in HQQ_BITS:
        raise ConfigError(f"--quant_method hqq takes --quant_bits 2, 3, 4 or 8, got {bits}")
    if method == "eetq" and bits != 8:
        raise ConfigError(f"--quant_method eetq is 8-bit only; pass --quant_bits 8, got {bits}")
    if method == "aqlm" and not _prequantized(model_path, "aqlm"):
        raise ConfigError("--quant_method aqlm cannot quantize while loading (AQLM needs hours of calibration): give "
                          "--model an AQLM-quantized folder (its config.json has quantization_config quant_method "
                          "aqlm) and drop --quant_method")
    module, package = PACKAGES[method]
    if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None):
        raise MissingDependencyError(f"--quant_method {method} needs the '{package}' package: pip install "
                                     f"'{package}'")


def _prequantized(model_path: Optional[Path], method: Optional[str] = None) -> bool:
    found = prequantized_method(model_path)
    return found is not None and (method is None or found == method)


def prequantized_method(model_path: Optional[Path]) -> Optional[str]:
    """quant_method of a folder that is already quantized (GPTQ, AWQ, AQLM, ...), else None."""
    if model_path is None or not (Path(model_path) / "config.json").is_file():
        return None
    config = json.loads((Path(model_path) / "config.json").read_text())
    quant = config.get("quantization_config") or {}
    return quant.get("quant_method")


def _dtype(name: Optional[str], fallback: Any) -> Any:
    import torch

    return getattr(torch, name) if name else fallback


def quantization_config(args: Any, dtype: Any) -> Any:
    """transformers' quantization config for --quant_method (None without one)."""
    method = getattr(args, "quant_method", None)
    if not method or method in ("aqlm", "hqq"):  # aqlm: the folder's own; hqq: quantized after loading (quantize_hqq)
        return None
    import transformers

    bits = args.quant_bits
    if method == "bnb":
        if bits == 8:
            return transformers.BitsAndBytesConfig(load_in_8bit=True)
        return transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=args.bnb_4bit_quant_type,
            bnb_4bit_use_double_quant=args.bnb_4bit_use_double_quant,
            bnb_4bit_compute_dtype=_dtype(args.bnb_4bit_compute_dtype, dtype),
            bnb_4bit_quant_storage=_dtype(args.bnb_4bit_compute_dtype, dtype))
    if method == "quanto":
        return transformers.QuantoConfig(weights=QUANTO_BITS[bits])
    if method == "eetq":
        return transformers.EetqConfig("int8")
    raise ConfigError(f"--quant_method {method}: not a training quantization method")


def load_base(info: Any, args: Any) -> Any:
    """The base model for training: plain, or quantized by --quant_method and readied for adapters."""
    from ..models import load_model
    from ..models.device import resolve_dtype

    dtype = resolve_dtype(args.torch_dtype)
    quant = quantization_config(args, dtype)
    with read_by_tensor(info.path, quant is not None and not args.trust_remote_code) as options:
        if options is None and quant is not None and _reads_whole(info.path):
            options = {"disable_mmap": True}
        model = load_model(info, args.torch_dtype, args.attn_impl, args.trust_remote_code, quantization_config=quant,
                           load_options=options)
    hqq = getattr(args, "quant_method", None) == "hqq"
    if hqq:
        quantize_hqq(model, args.quant_bits, dtype)
    if quant is not None or prequantized_method(info.path) or hqq:
        from peft import prepare_model_for_kbit_training

        release_freed_memory()
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(getattr(args, "gradient_checkpointing", False)))
        logger.info(f"base loaded quantized ({getattr(args, 'quant_method', None) or prequantized_method(info.path)}"
                    f"{f', {args.quant_bits}-bit' if getattr(args, 'quant_bits', None) else ''}); adapters train in "
                    f"{dtype}")
    return model


def quantize_hqq(model: Any, bits: int, dtype: Any) -> None:
    """Replace the decoder's linear layers by HQQ's (calibration-free, in place, on the model's device) through the hqq
    package: transformers 5 no longer quantizes HQQ while loading. peft's LoRA wraps HQQLinear layers."""
    from hqq.core.quantize import BaseQuantizeConfig
    from hqq.models.hf.base import AutoHQQHFModel

    device = str(next(model.parameters()).device)
    AutoHQQHFModel.quantize_model(model, quant_config=BaseQuantizeConfig(nbits=bits, group_size=HQQ_GROUP_SIZE),
                                  compute_dtype=dtype, device=device)


def quantized_linear_names(model: Any) -> Optional[list[str]]:
    """The names of the quantized linear layers peft's all-linear does not find (HQQ's are no nn.Linear), else None."""
    import sys

    if "hqq.core.quantize" not in sys.modules:  # no HQQ layer without it (and importing it takes seconds)
        return None
    from hqq.core.quantize import HQQLinear

    names = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, HQQLinear)})
    return names or None


def _safetensors_files(model_path: Path) -> list[Path]:
    """The folder's checkpoint files as from_pretrained picks them (a sharded index's, or model.safetensors), or []."""
    index = Path(model_path) / "model.safetensors.index.json"
    if index.is_file():
        return [Path(model_path) / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    single = Path(model_path) / "model.safetensors"
    return [single] if single.is_file() else []


@contextmanager
def read_by_tensor(model_path: Path, wanted: bool = True) -> Iterator[Optional[dict]]:
    """from_pretrained options that hand it the checkpoint as a state dict of safetensors slices read with pread(2)
    (safetensors' "pread" backend) rather than memory-mapped, so that quantizing while loading reads one tensor at a
    time into memory of its own, freed once that tensor is quantized: no fp32 page stays resident (a mapped file keeps
    every page it read, and the tied fp32 embeddings keep it mapped for the whole run; a file read whole is the
    whole checkpoint at once). None (load as usual) where not wanted, or without safetensors files."""
    files = _safetensors_files(model_path) if wanted else []
    if not files:
        yield None
        return
    import transformers
    from safetensors import safe_open

    config = transformers.AutoConfig.from_pretrained(model_path)
    options = {"config": config}
    if (Path(model_path) / "generation_config.json").is_file():
        options["generation_config"] = transformers.GenerationConfig.from_pretrained(model_path)
    with ExitStack() as stack:
        handles = [stack.enter_context(safe_open(str(f), framework="pt", backend="pread")) for f in files]
        options["state_dict"] = {key: handle.get_slice(key) for handle in handles for key in handle.keys()}
        yield options


def _reads_whole(model_path: Path) -> bool:
    """Where read_by_tensor is not used (remote code): quantize from safetensors files read into memory rather
    than memory-mapped, where they fit in a quarter of the available memory: the fp32 file mapped for quantizing
    stays mapped, and resident, for the whole run (0.5 GiB of SmolLM2-135M's 1.3 GiB after loading), while bytes read
    are freed once the layers are quantized."""
    import psutil

    size = sum(f.stat().st_size for f in Path(model_path).glob("*.safetensors"))
    return 0 < size < psutil.virtual_memory().available / 4


def release_freed_memory() -> None:
    """Give the heap that loading freed back to the system (glibc keeps freed chunks for reuse otherwise: 0.7 GiB
    after quantizing SmolLM2-135M)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to trim
        pass
