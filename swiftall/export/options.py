"""The export settings, read from any config object as attributes (defaults when a flag is absent), and checked.

The method/bits table and the GGUF types live here, so the error messages and the help text agree with what the
code does. `FLAGS.md` beside this file lists every flag for the config section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..utils.errors import ConfigError

# bits each method can write (GGUF takes --gguf_type instead; --quant_bits picks a default type for it)
METHOD_BITS: dict[str, tuple[int, ...]] = {"gptq": (2, 3, 4, 8), "awq": (4,), "bnb": (4, 8), "fp8": (8,),
                                           "gguf": (2, 3, 4, 5, 6, 8, 16, 32)}
# written directly by llama.cpp's converter
GGUF_CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
# written by llama.cpp's quantizer from an f16 GGUF: name -> llama_ftype
GGUF_QUANT_TYPES: dict[str, int] = {
    "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13,
    "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16, "q5_k_m": 17, "q6_k": 18, "iq4_nl": 25, "iq4_xs": 30,
}
GGUF_TYPES = GGUF_CONVERTER_TYPES + tuple(GGUF_QUANT_TYPES)
GGUF_BITS_DEFAULT = {2: "q2_k", 3: "q3_k_m", 4: "q4_k_m", 5: "q5_k_m", 6: "q6_k", 8: "q8_0", 16: "f16", 32: "f32"}

DEFAULT_PROMPTS = ("What is the capital of France?", "Write one sentence about the ocean.",
                   "What is 12 plus 7?", "Name three colors.")


@dataclass
class ExportOptions:
    """Everything `swiftall export` does besides the plain LoRA merge."""

    quant_method: Optional[str] = None
    quant_bits: Optional[int] = None
    gguf_type: Optional[str] = None
    group_size: int = 128
    quant_n_samples: int = 128
    quant_seqlen: int = 512
    quant_batch_size: int = 1
    bnb_4bit_quant_type: str = "nf4"
    to_ollama: bool = False
    gguf_lora: bool = False
    check: Optional[str] = None              # `export --check DIR`: check an existing export
    export_check: bool = True                # check every export against the original
    max_ppl_increase: float = 0.10
    check_n_samples: int = 16
    check_max_new_tokens: int = 24
    check_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    overwrite: bool = False
    push_to_hub: bool = False
    hub_model_id: Optional[str] = None
    hub_private: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> "ExportOptions":
        get = lambda name, default: getattr(cfg, name, default)  # noqa: E731
        opts = cls(
            quant_method=(get("quant_method", None) or None), quant_bits=get("quant_bits", None),
            gguf_type=get("gguf_type", None), group_size=int(get("group_size", 128)),
            quant_n_samples=int(get("quant_n_samples", 128)),
            quant_seqlen=int(get("quant_seqlen", None) or min(int(get("max_length", 512) or 512), 512)),
            quant_batch_size=int(get("quant_batch_size", 1)), bnb_4bit_quant_type=get("bnb_4bit_quant_type", "nf4"),
            to_ollama=bool(get("to_ollama", False)), gguf_lora=bool(get("gguf_lora", False)),
            check=get("check_path", None), export_check=bool(get("export_check", True)),
            max_ppl_increase=float(get("max_ppl_increase", 0.10)), check_n_samples=int(get("check_n_samples", 16)),
            check_max_new_tokens=int(get("check_max_new_tokens", 24)),
            check_prompts=list(get("check_prompts", None) or DEFAULT_PROMPTS),
            overwrite=bool(get("overwrite", False) or get("overwrite_output_dir", False)),
            push_to_hub=bool(get("push_to_hub", False)), hub_model_id=get("hub_model_id", None),
            hub_private=bool(get("hub_private", True)))
        opts.validate()
        return opts

    def validate(self) -> None:
        if self.quant_method is not None:
            self.quant_method = str(self.quant_method).lower()
            if self.quant_method not in METHOD_BITS:
                raise ConfigError(f"--quant_method {self.quant_method}: unknown method; choose one of "
                                  f"{', '.join(METHOD_BITS)}")
        if self.quant_bits is not None:
            self.quant_bits = int(self.quant_bits)
            if self.quant_method is None:
                raise ConfigError("--quant_bits needs --quant_method (gptq, awq, bnb, fp8 or gguf)")
            allowed = METHOD_BITS[self.quant_method]
            if self.quant_bits not in allowed:
                raise ConfigError(f"--quant_method {self.quant_method} --quant_bits {self.quant_bits}: "
                                  f"{self.quant_method} writes {'/'.join(map(str, allowed))}-bit models only")
        self._validate_gguf()
        if self.group_size != -1 and self.group_size <= 0:
            raise ConfigError(f"--group_size {self.group_size}: must be a positive number of input columns "
                              "(or -1 for one group per row)")
        for name in ("quant_n_samples", "quant_seqlen", "quant_batch_size", "check_n_samples"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name} {getattr(self, name)}: must be at least 1")
        if self.max_ppl_increase < 0:
            raise ConfigError(f"--max_ppl_increase {self.max_ppl_increase}: must be >= 0 (0.1 means +10%)")
        if self.push_to_hub and not self.hub_model_id:
            raise ConfigError("--push_to_hub true needs --hub_model_id ORG/NAME")
        if self.to_ollama and self.quant_method != "gguf":
            raise ConfigError("--to_ollama true writes a Modelfile for a GGUF file; add --quant_method gguf")

    def _validate_gguf(self) -> None:
        if self.gguf_type is not None:
            self.gguf_type = str(self.gguf_type).lower()
            if self.quant_method is None:
                self.quant_method = "gguf"
            if self.quant_method != "gguf":
                raise ConfigError(f"--gguf_type goes with --quant_method gguf, not {self.quant_method}")
            if self.gguf_type not in GGUF_TYPES:
                raise ConfigError(f"--gguf_type {self.gguf_type}: unknown; choose one of {', '.join(GGUF_TYPES)}")
        elif self.quant_method == "gguf":
            self.gguf_type = GGUF_BITS_DEFAULT[self.quant_bits] if self.quant_bits else "f16"
        if self.quant_method in ("gptq", "awq", "bnb") and self.quant_bits is None:
            self.quant_bits = 4
        if self.quant_method == "fp8":
            self.quant_bits = 8

    @property
    def needs_calibration(self) -> bool:
        return self.quant_method in ("gptq", "awq")

    def label(self) -> str:
        if self.quant_method == "gguf":
            return f"gguf-{self.gguf_type}"
        return f"{self.quant_method}-int{self.quant_bits}" if self.quant_method else "merged"
