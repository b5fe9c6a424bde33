"""The export settings, built from an ExportConfig (or a stand-in object with its fields) and checked.

The method/bits table and the GGUF types live here, so the error messages and the help text agree with what the
code does; every flag's default and help live once, in swiftall/config/export.py (and the shared sections).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
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

def export_values(cfg: Any) -> dict[str, Any]:
    """Every export field: ExportConfig's defaults, then the object's attributes (ms-swift aliases such as
    `overwrite` or `check` mapped to their fields)."""
    from ..config import ExportConfig

    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    aliases = ExportConfig.alias_table()
    given = {aliases.get(k, k): v for k, v in vars(cfg).items()}
    return {**ExportConfig.field_defaults(), **given}


DEFAULT_PROMPTS = ("What is the capital of France?", "Write one sentence about the ocean.",
                   "What is 12 plus 7?", "Name three colors.")


@dataclass
class ExportOptions:
    """Everything `swiftall export` does besides the plain LoRA merge. Built by `from_config` from an ExportConfig
    (or any object with its fields): the defaults live once, in swiftall/config/export.py."""

    quant_method: Optional[str]
    quant_bits: Optional[int]
    gguf_type: Optional[str]
    group_size: int
    quant_n_samples: int
    quant_seqlen: int
    quant_batch_size: int
    bnb_4bit_quant_type: str
    to_ollama: bool
    gguf_lora: bool
    check: Optional[str]                     # `export --check DIR`: check an existing export
    export_check: bool                       # check every export against the original
    max_ppl_increase: float
    check_n_samples: int
    check_max_new_tokens: int
    check_prompts: list[str]
    overwrite: bool
    push_to_hub: bool
    hub_model_id: Optional[str]
    hub_private: bool

    @classmethod
    def from_config(cls, cfg: Any) -> "ExportOptions":
        """An ExportConfig, or a stand-in object (tests, notebooks): its attributes, by field name or ms-swift alias,
        over ExportConfig's defaults."""
        c = SimpleNamespace(**export_values(cfg))
        opts = cls(quant_method=c.quant_method or None, quant_bits=c.quant_bits, gguf_type=c.gguf_type,
                   group_size=int(c.group_size), quant_n_samples=int(c.quant_n_samples),
                   quant_seqlen=int(c.quant_seqlen or min(int(c.max_length or 512), 512)),
                   quant_batch_size=int(c.quant_batch_size), bnb_4bit_quant_type=c.bnb_4bit_quant_type,
                   to_ollama=bool(c.to_ollama), gguf_lora=bool(c.gguf_lora), check=c.check_path,
                   export_check=bool(c.export_check), max_ppl_increase=float(c.max_ppl_increase),
                   check_n_samples=int(c.check_n_samples), check_max_new_tokens=int(c.check_max_new_tokens),
                   check_prompts=list(c.check_prompts or DEFAULT_PROMPTS), overwrite=bool(c.overwrite_output_dir),
                   push_to_hub=bool(c.push_to_hub), hub_model_id=c.hub_model_id, hub_private=bool(c.hub_private))
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
