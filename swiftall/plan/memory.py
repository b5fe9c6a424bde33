"""Memory of one process, by component, from the model's shape and the settings (see constants.py for what was
measured and what is theory)."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import constants as C
from .setting import REFERENCE_METHODS, Setting
from .spec import ModelSpec

GIB = 2 ** 30


@dataclass(frozen=True)
class Component:
    name: str
    bytes: float
    note: str = ""
    phase: str = "held"  # held all along, or the phase it lives in: "backward" or "optimizer step" (not both at once)


@dataclass
class Plan:
    model: ModelSpec
    setting: Setting
    components: list[Component] = field(default_factory=list)
    trainable_params: float = 0.0

    @property
    def peak_bytes(self) -> float:
        """What is held all along, plus the larger of the phases that do not overlap."""
        phases: dict[str, float] = {}
        for c in self.components:
            phases[c.phase] = phases.get(c.phase, 0.0) + c.bytes
        held = phases.pop("held", 0.0)
        return held + max(phases.values(), default=0.0)

    @property
    def peak_gib(self) -> float:
        return self.peak_bytes / GIB

    def add(self, name: str, size: float, note: str = "", phase: str = "held") -> None:
        if size > 0:
            self.components.append(Component(name, size, note, phase))


def trainable_params(spec: ModelSpec, s: Setting) -> float:
    if not s.training:
        return 0.0
    if s.train_type == "full":
        return spec.total_params if spec.extra_params == 0 else spec.lm_params  # --freeze_vit by default
    # LoRA (and other adapters, sized as LoRA): r x (in + out) on every linear layer of every decoder layer
    return spec.layers * sum(s.lora_rank * (a + b) for a, b in spec.linear_shapes())


def weight_bytes(spec: ModelSpec, s: Setting) -> tuple[float, str]:
    if s.quant_bits:
        linear = spec.layers * spec.layer_linear_params
        rest = spec.total_params - linear
        quantized = linear * (s.quant_bits + C.QUANT_OVERHEAD_BITS) / 8
        return quantized + rest * s.dtype_bytes, f"{s.quant_bits}-bit linear layers, the rest {s.dtype}"
    return spec.total_params * s.dtype_bytes, f"{spec.total_params / 1e9:.3g}B parameters in {s.dtype}"


def activation_bytes(spec: ModelSpec, s: Setting) -> tuple[float, str]:
    """Tensors kept for the backward pass, per layer per token (theory in constants.py), times layers and tokens."""
    tokens = s.sequences * (s.length + s.media_items * spec.media_tokens)
    per_token = C.layer_activation_elements(spec, s) * s.dtype_bytes
    if s.attn == "eager":  # scores and their softmax, per head, for every pair of positions
        per_token += 2 * spec.heads * (s.length + s.media_items * spec.media_tokens) * s.dtype_bytes
    if s.checkpointing:  # layer inputs kept; one layer's activations live again while it is recomputed
        kept = spec.hidden + (C.LORA_CHECKPOINT_COPIES * C.lora_inputs(spec) if s.train_type != "full" else 0)
        size = tokens * (spec.layers * kept * s.dtype_bytes + per_token)
        return size, f"{tokens} tokens, checkpointed: layer inputs + one layer"
    return tokens * per_token * spec.layers, f"{tokens} tokens x {spec.layers} layers"


def logits_bytes(spec: ModelSpec, s: Setting) -> tuple[float, str]:
    """The output head over the vocabulary: sft keeps it for trained positions (all of them, at most); rlhf folds it
    in tiles (TRL's chunked log-probs)."""
    tokens = s.sequences * s.length
    if s.task == "rlhf":
        tile = min(tokens, C.LOGPROB_TILE_ROWS) * C.LOGPROB_TILE_COLUMNS * 4 * C.LOGPROB_TILE_COPIES
        return tile + tokens * 4 * 8, "tiles of TRL's chunked log-probs"
    return tokens * spec.vocab * 4 * C.LOGITS_COPIES, f"{tokens} x {spec.vocab} float32, {C.LOGITS_COPIES} copies"


def training_plan(spec: ModelSpec, s: Setting) -> Plan:
    plan = Plan(spec, s)
    shard = s.nproc if s.nproc > 1 else 1
    weights, note = weight_bytes(spec, s)
    plan.add("weights", weights / (shard if s.zero_stage >= 3 else 1), note)
    if s.quant_bits and s.device == "cpu":
        plan.add("unquantized weights kept", spec.total_params * s.dtype_bytes, C.QUANT_CPU_NOTE)
    elif s.quant_bits:
        plan.add("loading (one layer unquantized)", C.layer_bytes(spec, s.dtype_bytes), "transient while quantizing")
    trainable = trainable_params(spec, s)
    plan.trainable_params = trainable
    own = 4 if s.train_type != "full" else s.dtype_bytes  # peft keeps adapters in float32
    if s.train_type != "full":
        plan.add("trainable adapter", trainable * own, f"{trainable / 1e6:.3g}M parameters (LoRA r={s.lora_rank})")
    plan.add("gradients", trainable * own / (shard if s.zero_stage >= 2 else 1), f"{trainable / 1e6:.4g}M x {own} B")
    state = 2 * (1 if "8bit" in s.optim else own)
    plan.add("optimizer states", trainable * state / (shard if s.zero_stage >= 1 else 1),
             f"AdamW: 2 moments x {state // 2} B")
    plan.add("optimizer step temporaries", trainable * own * C.STEP_TEMP_COPIES / (shard if s.zero_stage >= 1 else 1),
             C.STEP_TEMP_NOTE, phase="optimizer step")
    size, note = activation_bytes(spec, s)
    plan.add("activations", size, note, phase="backward")
    size, note = logits_bytes(spec, s)
    plan.add("logits and loss", size, note, phase="backward")
    if s.train_type != "full":
        plan.add("adapter bookkeeping", C.LORA_FIXED_GIB * GIB, "measured: LoRA runs beyond the components",
                 phase="backward")
    if s.task == "rlhf" and s.rlhf_type in REFERENCE_METHODS:
        if s.train_type == "full":
            plan.add("reference model", weights, "a frozen copy (LoRA: the base with adapters off, no copy)")
    add_runtime(plan, s)
    return plan


def inference_plan(spec: ModelSpec, s: Setting) -> Plan:
    plan = Plan(spec, s)
    weights, note = weight_bytes(spec, s)
    plan.add("weights", weights, note)
    context = s.length + s.new_tokens + s.media_items * spec.media_tokens
    kv = 2 * spec.layers * spec.kv_dim * context * s.batch * s.dtype_bytes
    room = s.length + max(16, s.length // 2)  # the engine's cache buffers: the prompt and half as much again,
    kv *= max(context, room) / context        # grown by half their size when full
    plan.add("KV cache", kv, f"{s.batch} x {context} tokens, in buffers with room to grow")
    prefill = s.batch * s.length * (C.PREFILL_ELEMENTS_H * spec.hidden + 2 * spec.intermediate) * s.dtype_bytes
    scores = C.PREFILL_SCORE_COPIES * s.batch * spec.heads * s.length ** 2 * s.dtype_bytes
    plan.add("prefill activations", prefill + scores, "one layer's at a time, with a padded batch's attention scores")
    plan.add("last-token logits", s.batch * spec.vocab * 4 * 4, "")
    add_runtime(plan, s)
    return plan


def add_runtime(plan: Plan, s: Setting) -> None:
    if s.device == "cpu":
        plan.add("Python, torch and libraries", C.RUNTIME_CPU_GIB * GIB, C.RUNTIME_NOTE)
        dynamic = sum(c.bytes for c in plan.components if c.name in C.DYNAMIC)
        phase = "backward" if plan.setting.training else "held"
        plan.add("allocator overhead", dynamic * C.ALLOCATOR_OVERHEAD, C.ALLOCATOR_NOTE, phase=phase)
    else:
        plan.add("CUDA context", C.CUDA_CONTEXT_GIB * GIB, "not in torch.cuda.max_memory_allocated")


def make_plan(spec: ModelSpec, s: Setting) -> Plan:
    return training_plan(spec, s) if s.training else inference_plan(spec, s)
