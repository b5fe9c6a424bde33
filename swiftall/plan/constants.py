"""The planner's constants: which are theory (tensor shapes) and which were measured on this project's CPU runs
(benchmarks/bench_plan.py; the README's table). Change a measured one only with a new measurement beside it."""
from __future__ import annotations

from typing import Any

# ---- measured (benchmarks/bench_plan.py --baseline; see the README's planner table) -------------------------------
RUNTIME_CPU_GIB = 0.93  # peak RSS after importing torch, transformers, peft, trl, datasets and swiftall's pipelines
RUNTIME_NOTE = "measured: RSS after imports"
ALLOCATOR_OVERHEAD = 0.10  # on activations and logits: set before any run, kept (full-b4-l512 then came out -0.6%)
# LoRA: copies of each adapted layer's input kept per token. Theory says 1.25 (dropout's output for lora_A, and its
# byte mask); fitted to lora-b1-l128 and lora-b4-l128 it is 2.20, plus 0.08 GiB whatever the length; the other
# settings in the README's table were not used for the fit. Why LoRA keeps about one more copy is not explained yet.
LORA_INPUT_COPIES = 2.20
LORA_FIXED_GIB = 0.08
# With gradient checkpointing, LoRA runs still kept about this many copies of the adapted inputs per layer per token
# (fitted to lora-b1-l512-gc alone: the theory's layer inputs put it at -19%); the cause is not known yet
LORA_CHECKPOINT_COPIES = 1.6
ALLOCATOR_NOTE = "10% of activations and logits (checked on full-b4-l512)"
# QLoRA on a CPU: qlora-b1-l512 peaked above LoRA float32 at the same tokens (3.60 vs 3.36 GiB; the QLoRA test's note
# says the same), so a CPU bnb run is planned as holding its weights unquantized as well (fitted to that one run)
QUANT_CPU_NOTE = "measured: CPU bnb runs hold the unquantized weights too"
DYNAMIC = ("activations", "logits and loss", "KV cache", "prefill activations")
CUDA_CONTEXT_GIB = 0.5  # not measured here (no GPU on the development machine): a typical CUDA context

STEP_TEMP_COPIES = 1  # theory: foreach AdamW's sqrt of the 2nd moments (full size); full-b1-l128's peak (+0.2%)
STEP_TEMP_NOTE = "AdamW step temporaries (foreach sqrt of the 2nd moments); not with activations"

# ---- theory ------------------------------------------------------------------------------------------------------
QUANT_OVERHEAD_BITS = 0.5  # bnb 4-bit: one absmax per 64 weights (double quantization: 8-bit absmax + fp32 per 256)
LOGITS_COPIES = 3          # logits, log-softmax, and their gradient during the backward (float32)
LOGPROB_TILE_ROWS = 4096   # TRL's chunked log-probs: positions per tile
LOGPROB_TILE_COLUMNS = 4096  # swiftall's smaller vocabulary tiles on CPU (train/rlhf/common.py)
LOGPROB_TILE_COPIES = 5    # float32 temporaries of one tile (forward and backward)
PREFILL_SCORE_COPIES = 2   # a padded prefill batch passes a mask to SDPA: scores and softmax per head (a hypothesis
                           # added after infer-b16's run came out 11% above the plan without it)
PREFILL_ELEMENTS_H = 6     # one layer's prefill temporaries per token, in units of hidden_size (plus the MLP's)
LORA_DROPOUT_COPIES = True  # peft applies dropout to each adapted layer's input: one copy per adapted layer


def layer_activation_elements(spec: Any, s: Any) -> float:
    """Elements kept per token per decoder layer for the backward pass (SDPA, no s^2 scores):
    norms' inputs and outputs (4h), q/k/v and their rotated copies (2q + 2kv), k/v repeated for grouped-query
    attention (2q), the attention output (q), and the MLP's gate, up, activation and product (4i). LoRA adds its
    dropout copies of each adapted layer's input (3h for q/k/v, q for o, 2h for gate/up, i for down) and a byte
    mask each."""
    h, q, kv, i = spec.hidden, spec.q_dim, spec.kv_dim, spec.intermediate
    base = 4 * h + 2 * q + 2 * kv + 2 * q + q + 4 * i
    if s.train_type != "full" and LORA_DROPOUT_COPIES:
        base += lora_inputs(spec) * LORA_INPUT_COPIES * (1 + 1 / s.dtype_bytes) / 1.25  # the copy and its byte mask
    return base


def lora_inputs(spec: Any) -> int:
    """Elements of the adapted layers' inputs per token per decoder layer: q, k, v and gate, up each read the
    hidden state (5h), o reads the attention output (q), down the MLP's product (i)."""
    return 5 * spec.hidden + spec.q_dim + spec.intermediate


def layer_bytes(spec: Any, dtype_bytes: int) -> float:
    return spec.layer_linear_params * dtype_bytes
