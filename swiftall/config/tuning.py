"""Sections for the tuners beyond LoRA and for quantized bases: each tuner's own settings, and quantization
(used by training on a quantized base and by export)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Section, arg

# --quant_method values: which command takes which is checked by the command (training vs export)
QUANT_METHODS = ("bnb", "hqq", "quanto", "eetq", "aqlm", "gptq", "awq", "fp8", "gguf")
TRAIN_QUANT = ("bnb", "hqq", "quanto", "eetq", "aqlm")


@dataclass
class TunerOptionsSection(Section):
    name = "tuner_options"
    title = "tuner options (per --train_type)"
    init_weights: Optional[str] = arg(None, "lora: initialisation of the adapter: true (default), gaussian, pissa, "
                                      "olora, loftq, eva", aliases=("init_lora_weights",))
    target_regex: Optional[str] = arg(None, "A regular expression of module names to adapt (instead of "
                                      "--target_modules)")
    lorap_lr_ratio: Optional[float] = arg(None, "LoRA+: learning rate of the B matrices is this times the A "
                                          "matrices' (e.g. 16)")
    adalora_target_r: int = arg(8, "adalora: average rank kept after pruning")
    adalora_init_r: int = arg(12, "adalora: initial rank of each matrix")
    adalora_tinit: int = arg(0, "adalora: steps before rank pruning starts")
    adalora_tfinal: int = arg(0, "adalora: steps at the end with the final ranks fixed")
    adalora_deltaT: int = arg(1, "adalora: steps between two rank updates")
    boft_block_size: int = arg(4, "boft: block size of the butterfly orthogonal factors")
    boft_n_butterfly_factor: int = arg(1, "boft: number of butterfly factors")
    oft_block_size: int = arg(32, "oft: block size of the orthogonal matrices")
    fourierft_n_frequency: int = arg(1000, "fourierft: learned spectral coefficients per layer")
    fourierft_scaling: float = arg(150.0, "fourierft: scale of the spectral update")
    num_virtual_tokens: int = arg(20, "prompt/prefix/p_tuning: learned virtual tokens")
    llamapro_num_new_blocks: int = arg(4, "llamapro: blocks inserted (copies with zeroed output projections; only "
                                       "they train)")
    adapter_length: int = arg(128, "adapter: bottleneck width of the adapters after each MLP")
    lisa_activated_layers: int = arg(2, "lisa: layers trained fully at a time (the others frozen)")
    lisa_step_interval: int = arg(20, "lisa: steps between two random choices of layers")
    use_galore: bool = arg(False, "GaLore: low-rank projected gradients in the optimizer (full training)")
    galore_rank: int = arg(128, "GaLore: rank of the gradient projection")
    galore_update_proj_gap: int = arg(50, "GaLore: steps between two projection updates")
    galore_scale: float = arg(1.0, "GaLore: scale of the projected update")
    reft_layers: list[int] = arg([], "reft: layers that get an intervention (default: all)")
    reft_rank: int = arg(4, "reft: rank of each intervention")
    reft_intervention_type: str = arg("LoreftIntervention", "reft: pyreft intervention class")

    def check(self) -> None:
        positive = ("adalora_target_r", "adalora_init_r", "adalora_deltaT", "boft_block_size",
                    "boft_n_butterfly_factor", "oft_block_size", "fourierft_n_frequency", "num_virtual_tokens",
                    "llamapro_num_new_blocks", "adapter_length", "lisa_activated_layers", "lisa_step_interval",
                    "galore_rank", "galore_update_proj_gap", "reft_rank")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.lorap_lr_ratio is not None and self.lorap_lr_ratio <= 0:
            raise ConfigError(f"--lorap_lr_ratio must be > 0, got {self.lorap_lr_ratio}")
        if self.init_weights is not None and self.init_weights.lower() not in (
                "true", "false", "gaussian", "pissa", "olora", "loftq", "eva") and \
                not self.init_weights.startswith("pissa_niter_"):
            raise ConfigError(f"--init_weights {self.init_weights}: use true, gaussian, pissa, pissa_niter_N, olora, "
                              "loftq or eva")


@dataclass
class QuantSection(Section):
    name = "quant"
    title = "quantization"
    quant_method: Optional[str] = arg(None, "Training: load the base quantized (bnb, hqq, quanto, eetq, aqlm) and "
                                      "train adapters on it (QLoRA); export: gptq, awq, bnb, fp8 or gguf",
                                      choices=QUANT_METHODS)
    quant_bits: Optional[int] = arg(None, "Bits per weight (2, 3, 4 or 8, as the method allows)")
    bnb_4bit_quant_type: str = arg("nf4", "bnb 4-bit data type", choices=("nf4", "fp4"))
    bnb_4bit_use_double_quant: bool = arg(True, "bnb 4-bit: quantize the quantization constants too")
    bnb_4bit_compute_dtype: Optional[str] = arg(None, "bnb 4-bit: dtype of the matmuls (default: the model's "
                                                "--torch_dtype)", choices=("float32", "bfloat16", "float16"))

    def check(self) -> None:
        if self.quant_bits is not None and self.quant_bits not in (2, 3, 4, 8):
            raise ConfigError(f"--quant_bits must be 2, 3, 4 or 8, got {self.quant_bits}")
        if self.quant_method == "bnb" and self.quant_bits not in (None, 4, 8):
            raise ConfigError(f"--quant_method bnb takes --quant_bits 4 or 8, got {self.quant_bits}")
