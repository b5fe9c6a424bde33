"""`swiftall export`: merge LoRA adapters, quantize (GPTQ, AWQ, bnb, FP8) or convert to GGUF, each export checked
against the original."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .sections import AdapterSection, DataSection, OutputSection, TemplateSection
from .tuning import QuantSection

EXPORT_QUANT = ("gptq", "awq", "bnb", "fp8", "gguf")


@dataclass
class ExportSection(Section):
    name = "export"
    title = "export"
    merge_lora: bool = arg(False, "Merge --adapters into the base weights and save a standalone model (a "
                           "quantized export merges them first anyway); default --output_dir: <run>-merged")
    gguf_type: Optional[str] = arg(None, "GGUF: f32, f16, bf16, q8_0 (llama.cpp's converter) or a k-quant such as "
                                   "q4_k_m, q5_k_m, q6_k (llama.cpp's quantizer); default from --quant_bits, else f16")
    group_size: int = arg(128, "GPTQ/AWQ: input columns per quantization group (-1: one group per row); when it "
                          "does not divide a layer's inputs, the largest divisor that does is used and said")
    quant_n_samples: int = arg(128, "GPTQ/AWQ: calibration rows (from --dataset, else a built-in set)")
    quant_seqlen: Optional[int] = arg(None, "GPTQ/AWQ: tokens per calibration row (default: --max_length, at most 512)")
    quant_batch_size: int = arg(1, "GPTQ/AWQ: calibration rows per forward pass")
    to_ollama: bool = arg(False, "GGUF: also write an Ollama Modelfile (template and stop tokens from the chat "
                          "template)")
    gguf_lora: bool = arg(False, "Write the LoRA adapter alone as a GGUF file for llama.cpp's --lora")
    check_path: Optional[str] = arg(None, "Check an existing export (folder or .gguf) against --model instead of "
                                    "exporting", aliases=("check",))
    export_check: bool = arg(True, "Compare every export with the original: perplexity, KL, top-1 agreement, greedy "
                             "answers (export_report.json)")
    max_ppl_increase: float = arg(0.10, "Fail the check (keeping the files) when perplexity rises by more than this "
                                  "fraction (0.1 = +10%)")
    check_n_samples: int = arg(16, "Held-out rows the check scores (from --val_dataset, else the calibration set's "
                               "held-out part)")
    check_max_new_tokens: int = arg(24, "Tokens of each greedy answer the check compares")
    check_prompts: list[str] = arg([], "Prompts the check answers with both models (default: four built-in ones)")
    push_to_hub: bool = arg(False, "Upload the export to --hub_model_id (Hugging Face, or ModelScope with --hub "
                            "modelscope); offline, the export is kept and the upload error said")
    hub_model_id: Optional[str] = arg(None, "Repository to upload to, ORG/NAME")
    hub_private: bool = arg(True, "Create the repository private")


class ExportConfig(Config):
    """Export a model: merge LoRA adapters, quantize (gptq, awq, bnb, fp8) or convert to GGUF; every export is
    checked against the original and refused (files kept) past --max_ppl_increase."""

    command = "export"
    sections = (*MODEL, AdapterSection, TemplateSection, ExportSection, QuantSection, DataSection, OutputSection)
    defaults = {"max_length": 512}

    def check(self) -> None:
        if self.quant_method is not None and self.quant_method not in EXPORT_QUANT:
            raise ConfigError(f"--quant_method {self.quant_method} is a training quantization; export writes "
                              f"{', '.join(EXPORT_QUANT)}")
        if self.merge_lora and not self.adapters:
            raise ConfigError("swiftall export --merge_lora true needs --adapters DIR (the LoRA run folder)")
        if not (self.merge_lora or self.quant_method or self.gguf_type or self.check_path or self.gguf_lora
                or self.push_to_hub):
            raise ConfigError("swiftall export: nothing to do; pass --adapters DIR --merge_lora true, "
                              "--quant_method gptq|awq|bnb|fp8|gguf, --gguf_lora true or --check DIR")
