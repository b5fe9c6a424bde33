#!/usr/bin/env bash
# The GPU checks of one short lease, on a CUDA machine with torch but none of swiftall's other packages and no
# registry. Prepare here first (benchmarks/gpu_prepare.sh: .whl/ and .gpu/), then on that machine, from the repo root:
#     OUT=/some/folder benchmarks/gpu_check.sh        (the device tool: carry .whl and .gpu)
# Each step runs under its own time limit and the script goes on after a failure; everything it prints goes to
# $OUT/gpu_check.log, and the figures a step measures to $OUT/*.json.
#   1. bench_sft in bf16 on the GPU: model-FLOPs utilisation against the same GEMMs timed on the GPU, peak GPU
#      memory; padded vs padding-free vs --use_liger_kernel, and batch 16 (issue #17)
#   2. one LoRA run three ways on the same rows, bf16: plain, DDP of world size 1 (torchrun, nccl) and DeepSpeed
#      ZeRO-2; their per-step losses side by side (issue #14)
#   3. the pt engine on CUDA: the trained adapter's greedy answers to the memorisation rows, batched (issue #18)
#   4. memory: LoRA and full fine-tuning, with and without gradient checkpointing, measured beside `swiftall plan`
#   5. `swiftall demo` on the GPU (train, eval before/after through the pt engine, merge)
# The model is SmolLM2-135M-shaped with random weights (the embedded weights are over what travels), so answers are
# about learning the memorisation rows, not about knowledge.
set -u
OUT=${OUT:-/tmp/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=/tmp/gpu-check
rm -rf "$WORK" && mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

step() {  # step NAME SECONDS command...
    local name=$1 limit=$2; shift 2
    echo; echo "=== $name ($(date +%T), limit ${limit}s): $*"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    return $rc
}

# --- set-up: carried wheels beside the image's torch; swiftall itself from this tree. DRY=1 rehearses the script
# on a CPU machine with the repo's .venv (fewer rows; the GPU-only steps fail, saying why).
ROWS=192
if [ -n "${DRY:-}" ]; then
    export PATH=$REPO/.venv/bin:$PATH
    ROWS=16
else
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/swiftall . \
    || { echo "swiftall install failed"; exit 1; }
export PYTHONPATH=/tmp/swiftall:/tmp/site PATH=/tmp/swiftall/bin:$PATH
fi
head -"$ROWS" .gpu/bench/sft192.jsonl > "$WORK/sft.jsonl"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 - <<'EOF'
import importlib.metadata as m, torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
for p in ("transformers", "peft", "trl", "accelerate", "datasets", "deepspeed", "liger-kernel", "pyarrow", "swiftall"):
    try:
        print(p, m.version(p))
    except m.PackageNotFoundError:
        print(p, "missing")
EOF
command -v swiftall || { echo "no swiftall command"; exit 1; }

# --- the model: SmolLM2-135M's config and tokenizer, random weights (seed 0), saved in float32
python3 - "$WORK/smol" <<'EOF' || exit 1
import shutil, sys, torch
from transformers import AutoConfig, AutoModelForCausalLM
torch.manual_seed(0)
config = AutoConfig.from_pretrained(".gpu/smol")
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
model.save_pretrained(sys.argv[1])
for name in ("chat_template.jinja", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
    shutil.copy(f".gpu/smol/{name}", sys.argv[1])
print("random SmolLM2-135M-shaped model:", sum(p.numel() for p in model.parameters()) / 1e6, "M parameters")
EOF
MODEL=$WORK/smol

# ONLY=profile: just where a LoRA step's time goes (benchmarks/gpu_profile.py), padding-free, padded, and with Liger
if [ "${ONLY:-}" = profile ]; then
    for flags in '{}' '{"padding_free": false}' '{"use_liger_kernel": true}'; do
        step "profile $flags" 90 python3 benchmarks/gpu_profile.py "$MODEL" "$WORK/sft.jsonl" "$flags" 2>&1 \
            | grep -vE "it/s\]|^\s*[0-9]+-[0-9]+ "
    done
    exit 0
fi

# --- 1. throughput and model-FLOPs utilisation, bf16
step bench_sft 200 python3 benchmarks/bench_sft.py --model "$MODEL" --torch_dtype bfloat16 --data "$WORK/sft.jsonl" \
    --variants padding_free,padding_free+use_liger_kernel=true,plain,padding_free+per_device_train_batch_size=16 \
    --results "$OUT/bench_sft.json"

# --- 2. the same LoRA run: single process, DDP of world size 1 (nccl), ZeRO-2
TRAIN=(--model "$MODEL" --dataset .gpu/memo.jsonl --train_type lora --torch_dtype bfloat16 --max_steps 40
       --per_device_train_batch_size 4 --learning_rate 2e-3 --lora_rank 16 --logging_steps 1 --save_steps 1000
       --report_to none --max_length 128 --seed 0 --dataloader_num_workers 0)
step single 60 swiftall sft "${TRAIN[@]}" --output_dir "$WORK/single"
NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT step ddp1 60 torchrun --nproc_per_node 1 --master_port 29611 -m swiftall sft \
    "${TRAIN[@]}" --output_dir "$WORK/ddp1" 2>&1 | grep -vE "NCCL INFO (Channel|Ring|Trees|P2P|[0-9]+ coll)" | head -c 20000
step zero2 90 swiftall sft "${TRAIN[@]}" --deepspeed zero2 --output_dir "$WORK/zero2"
python3 - "$WORK" "$OUT/equivalence.json" <<'EOF'
import json, sys
from pathlib import Path
work, runs = Path(sys.argv[1]), {}
for name in ("single", "ddp1", "zero2"):
    log = work / name / "logging.jsonl"
    if log.exists():
        rows = [json.loads(l) for l in log.read_text().splitlines()]
        runs[name] = {r["step"]: r["loss"] for r in rows if "loss" in r and "train_runtime" not in r and "step" in r}
base = runs.get("single", {})
report = {}
for name, losses in runs.items():
    common = sorted(set(base) & set(losses))
    rel = max((abs(losses[s] - base[s]) / max(abs(base[s]), 1e-8) for s in common), default=None)
    report[name] = {"steps": len(losses), "first": losses.get(min(losses, default=0)), "last": losses.get(max(losses, default=0)),
                    "max_rel_diff_vs_single": rel}
    print(f"{name:<8} steps {len(losses):>3}  first loss {report[name]['first']}  last {report[name]['last']}  "
          f"max relative difference vs single {rel}")
Path(sys.argv[2]).write_text(json.dumps({"runs": report, "losses": runs}, indent=1))
EOF

# --- 3. the pt engine on CUDA: a full bf16 fine-tune memorises the rows (a random model's LoRA learns too slowly for
# a short check), then its greedy answers to them, all 16 in one batch
step memorise 90 swiftall sft --model "$MODEL" --dataset .gpu/memo.jsonl --train_type full --torch_dtype bfloat16 \
    --max_steps 300 --per_device_train_batch_size 4 --learning_rate 1e-3 --logging_steps 25 --save_steps 1000 \
    --report_to none --max_length 128 --seed 0 --output_dir "$WORK/memo"
step infer 60 swiftall infer --model "$WORK/memo" --val_dataset .gpu/memo.jsonl --max_new_tokens 24 \
    --temperature 0 --max_batch_size 16 --result_path "$WORK/infer.jsonl"
python3 - "$WORK/infer.jsonl" .gpu/memo.jsonl <<'EOF'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = [json.loads(l)["messages"][-1]["content"] for l in open(sys.argv[2])]
answers = [g.get("response") for g in got]
exact = sum(a is not None and a.strip() == w for a, w in zip(answers, want))
print(f"pt engine on CUDA: {exact}/{len(want)} greedy answers equal the trained ones")
for a, w in zip(answers, want):
    if a is None or a.strip() != w:
        print(f"  got {a!r}, trained on {w!r}")
EOF

# --- 4. memory: measured peak (torch.cuda.max_memory_allocated) beside the planner's figure
for spec in "lora false" "lora true" "full false" "full true"; do
    set -- $spec
    MEM=(--model "$MODEL" --train_type "$1" --gradient_checkpointing "$2" --torch_dtype bfloat16
         --per_device_train_batch_size 8 --max_length 512)
    step "plan_$1_gc_$2" 30 swiftall plan sft "${MEM[@]}"
    step "memory_$1_gc_$2" 60 swiftall sft "${MEM[@]}" --dataset "$WORK/sft.jsonl" --max_steps 6 --logging_steps 1 \
        --save_steps 1000 --report_to none --truncation_strategy right --output_dir "$WORK/mem_$1_$2" >/dev/null 2>&1
    python3 - "$WORK/mem_$1_$2/logging.jsonl" "$OUT/memory.jsonl" "$1" "$2" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seen = [{k: v for k, v in r.items() if k.startswith("memory")} for r in rows if any(k.startswith("memory") for k in r)]
record = {"train_type": sys.argv[3], "gradient_checkpointing": sys.argv[4], **(seen[-1] if seen else {})}
print("measured:", record)
open(sys.argv[2], "a").write(json.dumps(record) + "\n")
EOF
done

# --- 5. the demo, end to end on the GPU
step demo 150 swiftall demo --model "$MODEL" --output_dir "$WORK/demo"
echo; echo "=== done at $(date +%T)"
