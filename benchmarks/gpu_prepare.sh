#!/usr/bin/env bash
# Prepares what benchmarks/gpu_check.sh needs on a GPU machine that reaches no registry (the `device` tool's
# machines): wheels of the packages its image lacks or holds in other versions (.whl/), the embedded model's
# config and tokenizer without its weights (the check builds random weights of the same shape there: the weights
# file is over the 64 MiB that travels), the benchmark rows and a memorisation set (.gpu/). Both folders are ignored
# by git (.git/info/exclude) and named in the call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for p in /.whl/ /.gpu/; do grep -qxF "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
mkdir -p .whl .gpu/smol .gpu/bench
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
# the versions the CPU suite runs with; pydantic & co. for deepspeed; liger-kernel for --use_liger_kernel
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLAT -d .whl \
  transformers==5.24.0 huggingface_hub==2.4.0 peft==0.21.2 trl==1.16.0 datasets==5.2.0 dill==0.4.1 \
  multiprocess==0.70.19 liger-kernel==0.8.5 gguf==0.19.0 hjson==3.1.0 pydantic==2.14.4 pydantic-core==2.50.5 \
  annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0 httpx2==2.16.2 httpcore2==2.16.2 \
  truststore==0.10.5 click==8.5.1 hf-xet==1.8.0 anyio==4.16.0 h11==0.16.0
# deepspeed ships a source archive only: a pure-Python wheel without compiled ops (DS_BUILD_OPS=0)
ls .whl/deepspeed-*.whl >/dev/null 2>&1 || DS_BUILD_OPS=0 $PY -m pip wheel -q --no-deps --no-build-isolation \
  deepspeed==0.19.8 -w .whl
MODEL=$($PY -c "from swiftall.hub.embedded import embedded_model_dir; print(embedded_model_dir())")
cp "$MODEL"/{chat_template.jinja,config.json,generation_config.json,tokenizer.json,tokenizer_config.json} .gpu/smol/
$PY ../shared/bench/make_data.py /tmp/gpu-bench-data >/dev/null
head -192 /tmp/gpu-bench-data/sft.jsonl > .gpu/bench/sft192.jsonl
$PY - <<'PYEOF'
import json, random
rng = random.Random(0)
names = ["Alice", "Bruno", "Chen", "Dmitri", "Elena", "Farah", "Gustav", "Hiro", "Ingrid", "Jamal", "Kofi", "Lucia",
         "Mateo", "Nadia", "Oskar", "Priya"]
places = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Delhi", "Rome"]
with open(".gpu/memo.jsonl", "w") as f:
    for name in names:
        answer = f"The code word for {name} is {rng.choice(places)} {rng.randint(10, 99)}."
        f.write(json.dumps({"messages": [{"role": "user", "content": f"What is the code word for {name}?"},
                                         {"role": "assistant", "content": answer}]}) + "\n")
PYEOF
du -sh .whl .gpu
