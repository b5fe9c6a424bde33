"""Library noise a user cannot act on, hidden unless --verbose: deprecation warnings raised inside transformers,
TRL, peft and torch (`is_gradient_checkpointing is deprecated`, `past_key_values` renames), their info and warning
logs, and import-time notes of optional kernels. swiftall's own messages and real errors still show."""
from __future__ import annotations

import logging
import warnings

# loggers of libraries that print notes at import or per call; errors still get through
NOISY_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension", "torch._dynamo", "bitsandbytes", "accelerate",
                 "datasets", "peft", "trl", "huggingface_hub", "httpx", "absl", "DeepSpeed")
# GPTQModel's logger (logbar) sets its own level when GPTQModel is imported, which peft does whenever it loads a LoRA
# adapter and GPTQModel is installed: its banner would open every infer/eval/deploy; only `disabled` survives that
SILENCED_LOGGERS = ("logbar",)
# where the Python API hides deprecation warnings: raised inside these packages only, not in the user's own code
LIBRARY_MODULES = r"(transformers|trl|peft|torch|torchvision|accelerate|datasets|huggingface_hub|bitsandbytes)(\.|$)"
_DONE = {"quiet": False}


class _ErrorsOnly(logging.Filter):
    """Kept by a logger that sets its own level when its library is imported (DeepSpeed sets WARNING, then says
    "Setting accelerator to CPU" in every run on a machine without CUDA)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def quiet_libraries(verbose: bool = False, only_libraries: bool = False) -> None:
    """Call once, early (before torch/transformers are imported when possible); idempotent. The CLI owns its
    process and hides every deprecation warning; the Python API (`only_libraries`) hides those raised inside the
    libraries it drives and leaves the rest of the user's program alone."""
    if verbose or _DONE["quiet"]:
        return
    _DONE["quiet"] = True
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=LIBRARY_MODULES if only_libraries else "")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger(name).addFilter(_ErrorsOnly())
    for name in SILENCED_LOGGERS:
        logging.getLogger(name).disabled = True
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.set_verbosity_error()


def verbose_in(argv: list[str]) -> bool:
    """Whether a command line asks for --verbose (read before the config is parsed, so that the libraries are
    quieted before they are imported)."""
    if "--verbose" not in argv:
        return False
    following = argv[argv.index("--verbose") + 1:][:1]
    return not following or following[0].lower() not in ("false", "0", "no", "off")
