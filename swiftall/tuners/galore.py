"""GaLore (--use_galore): full training whose optimizer keeps Adam's moments in a low-rank projection of each
attention/MLP weight's gradient (transformers' `galore_adamw` optimizer over the galore-torch package)."""
from __future__ import annotations

import importlib.util
from typing import Any

from ..utils.errors import MissingDependencyError

TARGETS = r".*\.(self_attn|attention|attn|mlp|feed_forward)\..*"


def check_installed() -> None:
    if importlib.util.find_spec("galore_torch") is None:
        raise MissingDependencyError("--use_galore needs the 'galore-torch' package: pip install galore-torch "
                                     "(or pip install 'swiftall[galore]')")


def configure(training_args: Any, args: Any) -> None:
    """Switch transformers' TrainingArguments to the GaLore optimizer with swiftall's --galore_* settings."""
    from transformers.training_args import OptimizerNames

    check_installed()
    training_args.optim = OptimizerNames.GALORE_ADAMW
    training_args.optim_target_modules = TARGETS
    training_args.optim_args = (f"rank={args.galore_rank},update_proj_gap={args.galore_update_proj_gap},"
                                f"scale={args.galore_scale},proj_type=std")
