"""Library noise a user cannot act on, hidden unless --verbose: deprecation warnings raised inside transformers,
TRL, peft and torch (`is_gradient_checkpointing is deprecated`, `past_key_values` renames), their info and warning
logs, and import-time notes of optional kernels. swiftall's own messages and real errors still show."""
from __future__ import annotations

import logging
import warnings

# loggers of libraries that print notes at import or per call; errors still get through
NOISY_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension", "torch._dynamo", "bitsandbytes", "accelerate",
                 "datasets", "peft", "trl", "huggingface_hub", "httpx")
_DONE = {"quiet": False}


def quiet_libraries(verbose: bool = False) -> None:
    """Call once, early (before torch/transformers are imported when possible); idempotent."""
    if verbose or _DONE["quiet"]:
        return
    _DONE["quiet"] = True
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
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
