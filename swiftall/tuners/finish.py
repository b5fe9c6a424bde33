"""What the final save of a run needs beyond the trainer's own: PiSSA/OLoRA rewrite the base weights they start
from, so the adapter saved into the run folder is converted (peft's weight conversion, rank 2r) into one that
applies to the original base, which is what `infer --adapters` and `export` load. Checkpoints keep the
unconverted adapter, which is what resuming needs."""
from __future__ import annotations

import atexit
import shutil
import tempfile
import types
from pathlib import Path
from typing import Any

from ..utils.log import get_logger

logger = get_logger(__name__)


def prepare_final_save(model: Any, args: Any) -> None:
    if not getattr(model, "swiftall_convert_on_save", False) or not getattr(args, "output_dir", None):
        return
    init = Path(tempfile.mkdtemp(prefix="swiftall-initial-adapter-"))
    atexit.register(shutil.rmtree, init, True)
    config = model.peft_config["default"]
    method = config.init_lora_weights
    config.init_lora_weights = True   # peft's recipe: the initial adapter saved as a plain LoRA
    model.save_pretrained(str(init))
    config.init_lora_weights = method
    final = Path(args.output_dir).resolve()
    original = model.save_pretrained

    def save_pretrained(self: Any, save_directory: str, *a: Any, **kw: Any) -> None:
        if Path(save_directory).resolve() != final:
            return original(save_directory, *a, **kw)
        kw.pop("state_dict", None)   # the conversion reads the live weights
        original(save_directory, *a, path_initial_model_for_weight_conversion=str(init), **kw)
        logger.info(f"{method}: the saved adapter is converted to apply to the original base (rank "
                    f"{2 * config.r}); checkpoints keep the unconverted one for resuming")

    model.save_pretrained = types.MethodType(save_pretrained, model)
