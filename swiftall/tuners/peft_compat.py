"""peft, made to skip work that cannot apply to the model at hand."""
from __future__ import annotations

import importlib
import sys

# modules of peft that bind `is_gptqmodel_available` by name
_GPTQ_PROBES = ("peft.import_utils", "peft.tuners.lora.gptq", "peft.tuners.lora.awq", "peft.utils.other",
                "peft.utils.quantization_utils")


def skip_unused_gptq_probe() -> None:
    """When gptqmodel is installed, peft imports it while wrapping every targeted layer, to ask whether the layer
    is one of gptqmodel's (10-30 s on a CPU, a banner on stdout, and changes to CUDA environment variables), even
    for plain models. A GPTQ/AWQ-quantized model is loaded through gptqmodel, so while gptqmodel is not imported no
    layer can be one of its layers: answer "not available" then, and peft's own answer once it is imported."""
    for name in _GPTQ_PROBES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        probe = getattr(module, "is_gptqmodel_available", None)
        if probe is None or getattr(probe, "_swiftall_guarded", False):
            continue
        module.is_gptqmodel_available = _guarded(probe)


def _guarded(probe):
    def is_gptqmodel_available() -> bool:
        return "gptqmodel" in sys.modules and probe()

    is_gptqmodel_available._swiftall_guarded = True
    return is_gptqmodel_available
