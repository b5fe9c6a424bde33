"""`swiftall tuners`: every --train_type, and what it combines with (the matrix the pre-run check enforces)."""
from __future__ import annotations

from ..utils.errors import ConfigError

COLUMNS = ["tuner", "quantized base", "grad ckpt", "distributed", "merge", "saves", "rlhf", "packing", "what it trains"]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def matrix_rows() -> list[list[str]]:
    from ..tuners.registry import GALORE, TUNER_SPECS

    rows = []
    for spec in (*TUNER_SPECS.values(), GALORE):
        merge = "n/a (full)" if spec.saves == "model" else _yes(spec.mergeable)
        rows.append([spec.name, _yes(spec.quantized), _yes(spec.grad_ckpt), ",".join(spec.distributed), merge,
                     spec.saves, _yes(spec.rlhf), _yes(spec.packing), spec.summary])
    return rows


def tuners_command(argv: list[str]) -> None:
    if argv and argv[:1] not in (["list"], ["matrix"]):
        raise ConfigError("usage: swiftall tuners [list]")
    from .listing import table

    print(table(COLUMNS, matrix_rows()))
    print("\nquantized base: --quant_method bnb --quant_bits 4|8 runs on a CPU (QLoRA); hqq (the hqq package) and "
          "quanto (optimum-quanto) train LoRA on a CPU too; eetq needs a GPU; aqlm, gptq and awq: give --model an "
          "already-quantized folder.\n"
          "Refused combinations stop before anything loads, naming the reason and a choice that works.")
