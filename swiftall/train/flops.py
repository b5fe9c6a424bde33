"""Training FLOPs counted from a decoder's config, and the machine's matmul rate on the same GEMMs (the ceiling).

Counted per token, for a Llama-style decoder (q/k/v/o projections, a gated MLP, untied or tied output head):
- full training: 6 x non-embedding parameters (forward 2, input gradient 2, weight gradient 2);
- LoRA and other adapters: the frozen weights need forward + input gradient only, 4 x non-embedding parameters,
  plus 6 x the adapter's own parameters;
- the output head [hidden x vocab] only at the positions whose next token is trained (the loss is computed
  there alone): 4 x hidden x vocab for adapters (the head is frozen), 6 x for full training.
Attention scores (QK^T, AV) are not counted: at per-sample lengths of a few hundred tokens they are under 1% of
the linear layers' work. The ceiling runs exactly the counted GEMMs at the run's tokens per step.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecoderShapes:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config: Any) -> "DecoderShapes":
        """From a transformers config (or anything with the same attribute names)."""
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        return cls(hidden=config.hidden_size, intermediate=config.intermediate_size,
                   layers=config.num_hidden_layers, heads=heads,
                   kv_heads=getattr(config, "num_key_value_heads", None) or heads, head_dim=head_dim,
                   vocab=config.vocab_size)

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of one layer's linear maps: q, k, v, o, gate, up, down."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    def non_embedding_params(self) -> int:
        """Linear weights and RMSNorm weights of the layers, plus the final norm (no biases: Llama-style)."""
        per_layer = sum(a * b for a, b in self.linears()) + 2 * self.hidden
        return self.layers * per_layer + self.hidden


def train_flops(shapes: DecoderShapes, tokens: int, head_positions: int, full: bool,
                adapter_params: int = 0) -> dict[str, float]:
    """FLOPs of training on `tokens` tokens with the loss at `head_positions` of them (see the module docstring)."""
    per_weight = 6 if full else 4
    body = per_weight * shapes.non_embedding_params() * tokens
    head = per_weight * shapes.hidden * shapes.vocab * head_positions
    adapter = 0 if full else 6 * adapter_params * tokens
    return {"body": float(body), "head": float(head), "adapter": float(adapter), "total": float(body + head + adapter)}


def _gemm_plan(shapes: DecoderShapes, tokens: int, head_positions: int, full: bool) -> list[tuple[int, int, int]]:
    """(m, k, n) of every GEMM of one training step: forward, input gradient and (full) weight gradient."""
    plan = []
    for _ in range(shapes.layers):
        for a, b in shapes.linears():
            plan += [(tokens, a, b), (tokens, b, a)] + ([(a, tokens, b)] if full else [])
    if head_positions:
        h, v = shapes.hidden, shapes.vocab
        plan += [(head_positions, h, v), (head_positions, v, h)] + ([(h, head_positions, v)] if full else [])
    return plan


def matmul_ceiling(shapes: DecoderShapes, tokens: int, head_positions: int, full: bool, repeats: int = 3,
                   dtype: Any = None, device: str = "cpu") -> dict[str, float]:
    """The GEMMs of one training step at these token counts, timed on this machine (best of `repeats`, after one
    warm-up): GFLOP/s is the rate a perfect trainer would reach. Operands are distinct tensors per layer, as in the
    model (no cache reuse across layers)."""
    import torch

    dtype = dtype or torch.float32
    plan = _gemm_plan(shapes, tokens, head_positions, full)
    pairs = [(torch.randn(m, k, dtype=dtype, device=device), torch.randn(k, n, dtype=dtype, device=device))
             for m, k, n in plan]
    flops = sum(2 * m * k * n for m, k, n in plan)
    best = float("inf")
    for attempt in range(repeats + 1):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for a, b in pairs:
            torch.mm(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        if attempt:  # the first pass warms up
            best = min(best, time.perf_counter() - start)
    return {"flops": float(flops), "seconds": best, "gflops_per_s": flops / best / 1e9}


def lora_params(shapes: DecoderShapes, rank: int) -> int:
    """Parameters of rank-`rank` LoRA on every linear map of every layer (all-linear, the output head excluded)."""
    return shapes.layers * rank * sum(a + b for a, b in shapes.linears())
