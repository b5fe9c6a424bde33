"""Load saved LoRA adapters onto a model (inference, export)."""
from __future__ import annotations

from typing import Any, Sequence

from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .own_format import tuner_of
from .runs import ADAPTER_FILE, parse_adapters, start_adapters

logger = get_logger(__name__)


def attach_adapters(model: Any, adapters: Sequence[str]) -> Any:
    """Load LoRA adapter folders ('name=DIR' names one; see parse_adapters). A run trained on a base with an sft
    adapter merged into it (dpo --sft_model_path RUN) gets that adapter merged first, as in training."""
    if not adapters:
        return model
    from peft import PeftModel

    from .peft_compat import skip_unused_gptq_probe

    skip_unused_gptq_probe()
    specs = parse_adapters(adapters)
    for spec in specs:
        if not (spec.path / ADAPTER_FILE).is_file():
            raise ConfigError(f"--adapters {spec.item}: no {ADAPTER_FILE} in {spec.path} (is it a LoRA run folder "
                              "or one of its checkpoint-N folders?)")
    for spec in specs:
        if tuner_of(spec.path) == "prefix":
            raise ConfigError(f"--adapters {spec.item}: a prefix-tuning adapter feeds its own keys/values into the KV "
                              "cache, which swiftall's engine manages itself, so it cannot be served yet; train "
                              "--train_type prompt or p_tuning instead (they are served)")
    own = _own_tuner(model, specs)
    if own is not None:   # swiftall's own tuners (adapter, reft): one folder onto the base
        return own
    for folder in start_adapters(specs):
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        logger.info(f"merged {folder} into the base first (the adapters were trained on top of it)")
    for i, spec in enumerate(specs):
        if i == 0:
            model = PeftModel.from_pretrained(model, str(spec.path), adapter_name=spec.name)
        else:
            model.load_adapter(str(spec.path), adapter_name=spec.name)
    return model.eval()


def _own_tuner(model: Any, specs: Sequence[Any]) -> Any:
    """A swiftall adapter/reft folder loaded onto the base (None when the folders are peft's)."""
    from . import adapter, reft

    kinds = {spec.item: tuner_of(spec.path) for spec in specs}
    own = {item: kind for item, kind in kinds.items() if kind in ("adapter", "reft")}
    if not own:
        return None
    if len(specs) > 1:
        raise ConfigError(f"--adapters: {', '.join(own)} ({', '.join(sorted(set(own.values())))}) cannot be served "
                          "beside other adapters; give it alone")
    return {"adapter": adapter, "reft": reft}[own[specs[0].item]].load(model, specs[0].path)


def check_mergeable(adapters: Sequence[str]) -> None:
    """export --merge_lora: refuse adapters whose tuner cannot be folded into the weights, before loading."""
    from .compat import merge_refusal

    for spec in parse_adapters(adapters):
        why = merge_refusal(tuner_of(spec.path), spec.item)
        if why:
            raise ConfigError(why)


def mixed_batches(model: Any) -> bool:
    """Whether requests for different adapters may share a batch (peft's `adapter_names`): LoRA adapters only; a
    model with another peft tuner answers every request with its one adapter."""
    configs = getattr(model, "peft_config", {}) or {}
    return bool(configs) and all(getattr(c, "peft_type", None) == "LORA" and not getattr(c, "use_dora", False)
                                 for c in configs.values())
