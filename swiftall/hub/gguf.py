"""Turn a .gguf file into a cached Hugging Face folder, once, through transformers."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ..utils.env import cache_root
from ..utils.errors import ModelNotFoundError
from ..utils.log import get_logger

logger = get_logger(__name__)


def gguf_cache_dir(gguf_path: Path) -> Path:
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:16]
    return cache_root() / "gguf" / f"{gguf_path.stem}-{key}"


def convert_gguf(gguf_path: str | Path) -> Path:
    """Dequantize a GGUF checkpoint into a float32 safetensors folder (cached by file identity)."""
    gguf_path = Path(gguf_path)
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file not found: {gguf_path}")
    target = gguf_cache_dir(gguf_path)
    if (target / "config.json").is_file():
        return target
    logger.info(f"converting {gguf_path.name} to a Hugging Face folder (once) -> {target}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise ModelNotFoundError(f"{gguf_path}: transformers could not load this GGUF file ({exc}). "
                                 "Install the 'gguf' package and check the architecture is supported.") from exc
    # Weights are now plain float32 tensors; drop the GGUF quantizer so the folder saves as a normal model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep theirs
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
