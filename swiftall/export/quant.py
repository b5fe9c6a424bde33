"""Weight quantization into folders transformers loads through its quantizers: bitsandbytes 4/8-bit (saved with
its quantization_config), GPTQ and AWQ through GPTQModel (calibrated on token ids), FP8 through llm-compressor
(compressed-tensors). Each library is an optional extra named in the message when missing."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from ..utils.optional import require
from .errors import ExportError

logger = get_logger(__name__)
KERNEL_GROUPS = (1024, 512, 256, 128, 64, 32, 16)   # group sizes GPTQModel's kernels take
GPTQ_OUT_MULTIPLE = 32   # output sizes the CPU kernel (TorchCpuAvx512Linear) loads


def linear_inputs(model: Any, skip: Sequence[str] = ()) -> dict[str, int]:
    """in_features of every nn.Linear GPTQ would quantize (the output head and skipped prefixes left out)."""
    import torch

    out = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "lm_head" not in name and not name.startswith(tuple(skip)):
            out[name] = module.in_features
    return out


def fit_group_size(requested: int, in_features: dict[str, int]) -> int:
    """`requested` when the kernels take it and it divides every layer's input size, else the largest group size
    that does (GPTQ kernels take 16..1024 in powers of two, or -1 for one group per row)."""
    if requested == -1 or not in_features:
        return requested
    common = 0
    for size in in_features.values():
        common = math.gcd(common, size)
    fits = [g for g in KERNEL_GROUPS if g <= requested and common % g == 0]
    sizes = sorted(set(in_features.values()))
    if not fits:
        best = max((g for g in KERNEL_GROUPS if common % g == 0), default=-1)
        raise ConfigError(f"--group_size {requested} fits no layer: the layers' input sizes {sizes} need a group "
                          f"size of {'/'.join(map(str, sorted(KERNEL_GROUPS)))} that divides them, at most "
                          f"{requested}; pass --group_size {best} (or -1 for one group per row)")
    if fits[0] != requested:
        logger.info(f"--group_size {requested} does not fit the layers' input sizes {sizes}; using {fits[0]}, the "
                    "largest group size that divides them all")
    return fits[0]


def export_bnb(src: Path, out: Path, bits: int, quant_type: str = "nf4", skip: Sequence[str] = ()) -> Path:
    """Quantize on load with bitsandbytes and save the quantized weights with their quantization_config."""
    require("bitsandbytes", "export", f"--quant_method bnb --quant_bits {bits}")
    import torch
    from transformers import BitsAndBytesConfig

    skip_modules = ["lm_head", *skip]
    if bits == 4:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                                    bnb_4bit_compute_dtype=torch.float32, llm_int8_skip_modules=skip_modules)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip_modules)
    model = model_class(src).from_pretrained(src, quantization_config=config, device_map="cpu")
    model.save_pretrained(out)
    return out


def model_class(folder: Path) -> Any:
    """The transformers class named in the folder's config.json `architectures` (a vision-language model loads
    with its own class, vision tower included), else AutoModelForCausalLM."""
    import json

    import transformers

    config = Path(folder) / "config.json"
    names = json.loads(config.read_text()).get("architectures") or [] if config.is_file() else []
    return getattr(transformers, names[0], None) if names and hasattr(transformers, names[0]) \
        else transformers.AutoModelForCausalLM


def export_gptq(src: Path, out: Path, bits: int, group_size: int, calibration: list[list[int]], batch_size: int = 1,
                method: str = "gptq", skip: Sequence[str] = ()) -> dict[str, Any]:
    """GPTQ (or AWQ) through GPTQModel on the given calibration token ids. Returns what was used."""
    if not calibration:
        raise ConfigError(f"--quant_method {method}: the calibration set has 0 rows; pass --dataset with text")
    gptqmodel = _gptqmodel(method)
    from gptqmodel import QuantizeConfig

    if method == "awq":
        check_awq_shapes(src, skip)
    if method == "gptq":
        check_gptq_shapes(src, skip)
    probe = _probe_layers(src)
    chosen = fit_group_size(group_size, {k: v for k, v in probe.items() if not k.startswith(tuple(skip))})
    kwargs: dict[str, Any] = {"bits": bits, "group_size": chosen}
    if method == "awq":
        from gptqmodel.quantization import FORMAT, METHOD

        kwargs.update(quant_method=METHOD.AWQ, format=FORMAT.GEMM)
    if skip:
        kwargs["dynamic"] = {rf"-:^{p.replace('.', '[.]')}.*": {} for p in skip}
    model = gptqmodel.GPTQModel.load(str(src), QuantizeConfig(**kwargs), device="cpu")
    rows = _calibration_rows(model, src, calibration)
    try:
        model.quantize(rows, batch_size=batch_size, calibration_data_min_length=2)
    except (ValueError, RuntimeError, NotImplementedError, AssertionError) as exc:
        raise ExportError(f"GPTQModel could not quantize {src} ({method}, {bits}-bit, group {chosen}): "
                          f"{type(exc).__name__} {exc}") from exc
    model.save(str(out))
    return {"group_size": chosen, "group_size_requested": group_size, "calibration_rows": len(rows)}


def _calibration_rows(model: Any, src: Path, calibration: list[list[int]]) -> list[Any]:
    """Token-id rows; a vision-language model (GPTQModel runs its processor on chat conversations) gets the same
    texts as one-turn text conversations: its vision tower is left unquantized, so text calibrates what is
    quantized."""
    if not getattr(model, "require_load_processor", False):
        return [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in calibration]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(src)
    return [[{"role": "user", "content": [{"type": "text", "text": tokenizer.decode(ids)}]}] for ids in calibration]


def _gptqmodel(method: str) -> Any:
    gptqmodel = require("gptqmodel", "export", f"--quant_method {method}")
    # GPTQModel asks for a 2-worker loader pool under a CPU pool of (cores + 1) // 2 workers: on 2 cores that
    # is 1 and its pool refuses to start. Give the CPU pool at least 2 (before the pool is first built).
    default = getattr(gptqmodel, "_default_cpu_workers", None)
    if default is not None and getattr(gptqmodel, "_DEVICE_THREAD_POOL", 1) is None:
        gptqmodel._default_cpu_workers = lambda: max(2, default())
    return gptqmodel


def _meta_model(src: Path) -> Any:
    """The model built from its config alone (meta device: no weights loaded)."""
    import torch
    from transformers import AutoConfig

    cls = model_class(src)
    build = getattr(cls, "_from_config", None) or cls.from_config  # a model class, or an Auto class (from_config)
    with torch.device("meta"):
        return build(AutoConfig.from_pretrained(src))


def _probe_layers(src: Path) -> dict[str, int]:
    """Linear input sizes from the config alone."""
    return linear_inputs(_meta_model(src))


def check_gptq_shapes(src: Path, skip: Sequence[str] = ()) -> None:
    """On a machine without CUDA the export is loaded back (its check, infer) with GPTQModel's CPU kernel, which
    takes only layers whose output size is a multiple of GPTQ_OUT_MULTIPLE; transformers' loader ignores per-layer
    exclusions, so such a model is refused before calibrating. Real models have none; tiny ones (a key/value
    projection of 16) do."""
    import torch

    if torch.cuda.is_available():
        return
    narrow = {name: m.out_features for name, m in _meta_model(src).named_modules()
              if isinstance(m, torch.nn.Linear) and "lm_head" not in name and not name.startswith(tuple(skip))
              and m.out_features % GPTQ_OUT_MULTIPLE}
    if narrow:
        first = next(iter(narrow))
        raise ConfigError(f"--quant_method gptq cannot be loaded back on this CPU: GPTQModel's CPU kernel needs every "
                          f"quantized layer's output size to be a multiple of {GPTQ_OUT_MULTIPLE}, and this model has "
                          f"{len(narrow)} that are not ({first}: {narrow[first]}); use --quant_method bnb, or "
                          "export on a CUDA machine")


def check_awq_shapes(src: Path, skip: Sequence[str] = ()) -> None:
    """GPTQModel's AWQ searches clipping over output channels in blocks of 64: every layer it quantizes needs an
    output size that is a multiple of 64. Said before calibration starts."""
    import torch

    outputs = {name: m.out_features for name, m in _meta_model(src).named_modules()
               if isinstance(m, torch.nn.Linear) and "lm_head" not in name and not name.startswith(tuple(skip))}
    bad = sorted({size for size in outputs.values() if size % 64})
    if bad:
        raise ConfigError(f"--quant_method awq cannot quantize {src}: GPTQModel's AWQ needs every layer's output size "
                          f"to be a multiple of 64, and this model has layers of {bad}; use --quant_method gptq")


def export_fp8(src: Path, out: Path, skip: Sequence[str] = ()) -> Path:
    """FP8 weights with dynamic activation scales (no calibration) through llm-compressor."""
    require("llmcompressor", "export-fp8", "--quant_method fp8")
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier

    model = model_class(src).from_pretrained(src, dtype="auto")
    ignore = ["lm_head", *[f"re:{p}.*" for p in skip]]
    recipe = QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=ignore)
    oneshot(model=model, recipe=recipe)
    model.save_pretrained(out, save_compressed=True)
    return out


def skipped_prefixes(family: Optional[Any]) -> list[str]:
    """Vision towers and audio encoders stay unquantized (their prefixes from the model family)."""
    if family is None or not getattr(family, "multimodal", False):
        return []
    return [p.rstrip(".") for p in (*family.vision_tower, *family.aligner)]
