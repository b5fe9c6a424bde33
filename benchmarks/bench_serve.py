"""Serving benchmark on the embedded model: `swiftall deploy` start to first answer, then one request alone vs
16 concurrent requests (64 new tokens each, ignore_eos) -- aggregate generated tokens/s, p50/p95 latency, ratio.

    .venv/bin/python benchmarks/bench_serve.py [--model smollm2-135m-instruct] [--concurrency 16] [--tokens 64]

Both measurements run side by side against the same server process, so their ratio is comparable even on a
shared machine; the load average is printed before and after. Then, with the server stopped, the model's bare
forward is timed (prefill of the same prompts, then greedy decode steps with a KV cache, no server, no scheduler)
at batch 1 and at batch 16: their tokens/s ratio is the most any batching server can reach on this machine.
Last, the detokenizer alone: time per token of an answer of 16 to 2,048 tokens (multibyte text), the engine's
incremental `Answer` beside re-decoding the whole answer at each token (what it did before); `--detok_only` runs
just that part. Two parts run only when asked: `--mm_only` (8 image requests to a tiny random Qwen2-VL, one after the
other vs all at once in the continuous batch, answers compared) and `--decode_only` (the engine's batched decode
step beside one pass of the model's own matmuls at the same batch, timed right after each step: ceiling / step).

Mixed adapters (also alone with `--adapters_only`): a server with two random LoRA adapters, 16 concurrent requests all
for one adapter vs 16 spread over both adapters and the base model, alternated on the same server (target 0.8x).

`--ms_swift PATH/bin/swift`: ms-swift's `swift deploy` (PyTorch backend, `--max_batch_size` as swiftall's, fp32, the
model's own chat template) on the same model folder, started first; once swiftall's part has run, the same 16
concurrent requests go to each server in turn (plain bodies, as ms-swift has no `ignore_eos`), and the ratio of
aggregate tokens/s is printed (target 2.5x); `--ms_swift_only` runs just that part, `--rounds N` sets how many
times each side-by-side part alternates (default 2, best of each). ms-swift runs under the OpenMP wait policy
swiftall's CLI chooses. ms-swift pins older transformers/peft/trl than swiftall, so it lives
in its own venv; one that reuses this venv's torch (no second torch download):

    python3.11 -m venv /work/msswift-venv
    echo $PWD/.venv/lib/python3.11/site-packages > /work/msswift-venv/lib/python3.11/site-packages/zz_main.pth
    /work/msswift-venv/bin/pip install --no-deps ms-swift==4.6.0 "transformers<5.20" "peft<0.21" "trl<1.0" \
        "datasets<4.8.5" "huggingface-hub<2.0" "fsspec<=2026.2.0" modelscope modelscope-hub addict attrdict \
        binpacking cpm-kernels dacite importlib-metadata json-repair oss2 rouge simplejson zstandard \
        transformers-stream-generator cryptography lazy-importer zipp aliyun-python-sdk-core aliyun-python-sdk-kms \
        crcmod pycryptodome jmespath

(`--no-deps` throughout: with the .pth file pip would otherwise replace packages inside this venv.)
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(url: str, i: int, tokens: int, model: str = "bench", ignore_eos: bool = True) -> tuple[float, int]:
    body = {"model": model, "messages": [{"role": "user", "content": f"Write a story about the number {i}."}],
            "max_tokens": tokens, "temperature": 0}
    if ignore_eos:  # swiftall's extension; ms-swift has none, so the side-by-side run sends plain bodies to both
        body["ignore_eos"] = True
    start = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=1800)
    r.raise_for_status()
    return time.perf_counter() - start, r.json()["usage"]["completion_tokens"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(model: str, port: int, batch: int, extra: tuple[str, ...] = (),
                 command: "list[str] | None" = None, name: str = "bench",
                 env: "dict | None" = None) -> tuple[subprocess.Popen, float]:
    """Starts `swiftall deploy` (or `command`, another OpenAI-compatible server on `port`) and waits for its first
    answer; returns the process and the seconds from start to that answer."""
    started = time.perf_counter()
    command = command or [sys.executable, "-m", "swiftall", "deploy", "--model", model, "--port", str(port),
                          "--served_model_name", "bench", "--max_batch_size", str(batch), *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    try:
        return proc, wait_ready(proc, f"http://127.0.0.1:{port}", command, name, started)
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen) -> None:
    """Ends a server and the processes it started (`swift deploy` runs the server in a child): its own session."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(proc: subprocess.Popen, url: str, command: list[str], name: str, started: float) -> float:
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited during start-up: {' '.join(command)}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    ask(url, 0, 1, name, ignore_eos=False)
    return time.perf_counter() - started


def concurrent(url: str, concurrency: int, tokens: int, models: tuple[str, ...] = ("bench",),
               ignore_eos: bool = True) -> tuple[float, list[tuple[float, int]], float]:
    """`concurrency` requests at once, request i to models[i % len(models)]: aggregate generated tokens/s, each
    request's (latency, tokens) and the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda i: ask(url, i, tokens, models[i % len(models)], ignore_eos), range(concurrency)))
    wall = time.perf_counter() - start
    return sum(n for _, n in done) / wall, done, wall


def forward_ceiling(model: str, batch: int, tokens: int) -> float:
    """Generated tokens/s of the bare model forward (transformers' DynamicCache, greedy, no server) for `batch`
    copies of the benchmark prompt, prefill included."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    from swiftall.models import resolve_model

    path = resolve_model(model).path
    tok = AutoTokenizer.from_pretrained(path)
    net = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    prompts = [tok.apply_chat_template([{"role": "user", "content": f"Write a story about the number {i}."}],
                                       add_generation_prompt=True, tokenize=False) for i in range(batch)]
    tok.padding_side = "left"
    enc = tok(prompts, return_tensors="pt", padding=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    with torch.inference_mode():
        start = time.perf_counter()
        out = net(input_ids=ids, attention_mask=mask, past_key_values=DynamicCache(), use_cache=True,
                  logits_to_keep=1)
        pos = mask.sum(-1, keepdim=True)
        for step in range(tokens - 1):
            token = out.logits[:, -1].argmax(-1, keepdim=True)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            out = net(input_ids=token, attention_mask=mask, position_ids=pos + step,
                      past_key_values=out.past_key_values, use_cache=True, logits_to_keep=1)
        return batch * tokens / (time.perf_counter() - start)


def matmul_pass(weights: list, batch: int) -> float:
    """Seconds for one pass of plain matmuls (`F.linear`) over these weights at `batch` rows: the least a decode step
    of the model can take on this machine (attention over the cache, norms, sampling and Python left out)."""
    import torch

    xs = {w.shape[1]: torch.randn(batch, w.shape[1], dtype=w.dtype) for w in weights}
    with torch.inference_mode():
        start = time.perf_counter()
        for w in weights:
            torch.nn.functional.linear(xs[w.shape[1]], w)
        return time.perf_counter() - start


def decode_fraction(model: str, batch: int, tokens: int) -> None:
    """The engine's batched decode step (scheduler, `batch` rows) beside the matmul ceiling of the model's own weights
    at that batch: after each step one pass of those matmuls alone is timed, so both see the same load on a shared
    machine. Prints median ceiling / median step (the issue's target: at least 60%)."""
    import torch

    from swiftall.infer import InferRequest, RequestConfig
    from swiftall.infer.pt import PtEngine

    engine = PtEngine.from_pretrained(model, torch_dtype="float32", max_batch_size=batch)
    weights = [m.weight.detach() for m in engine.model.modules() if isinstance(m, torch.nn.Linear)]
    pairs, inner = [], engine.scheduler._decode

    def timed() -> None:
        rows = len(engine.scheduler.rows)
        start = time.perf_counter()
        inner()
        pairs.append((rows, time.perf_counter() - start, matmul_pass(weights, rows)))

    engine.scheduler._decode = timed
    requests = [InferRequest(messages=[{"role": "user", "content": f"Write a story about the number {i}."}])
                for i in range(batch)]
    engine.infer(requests, RequestConfig(max_new_tokens=tokens, temperature=0, ignore_eos=True))
    engine.close()
    full = [(step, ceiling) for rows, step, ceiling in pairs[1:] if rows == batch]  # all rows decoding, warm
    step, ceiling = statistics.median(s for s, _ in full), statistics.median(c for _, c in full)
    flops = 2 * sum(w.numel() for w in weights) * batch
    print(f"decode step at batch {batch} (load {os.getloadavg()[0]:.1f}): {step * 1e3:.1f} ms median over "
          f"{len(full)} steps ({batch / step:.0f} tokens/s); the matmuls of its weights alone {ceiling * 1e3:.1f} ms "
          f"({flops / ceiling / 1e9:.0f} GFLOP/s) -> the step runs at {ceiling / step:.0%} of the matmul ceiling "
          f"(target 60%)")


def multimodal_batch(requests: int = 8, tokens: int = 32) -> None:
    """`requests` image requests to a tiny random Qwen2-VL (the test fixture, weights drawn at std 0.3 so that
    answers differ by image): one after the other, then all at once (they share the continuous batch); wall times,
    their ratio, and whether every concurrent answer equals its sequential one."""
    import tempfile
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from fixtures_mm import BUILDERS, write_image

    from swiftall.hub.embedded import embedded_model_dir
    from swiftall.infer import InferRequest, RequestConfig
    from swiftall.infer.pt import PtEngine

    root = Path(tempfile.mkdtemp(prefix="bench-mm-"))
    engine = PtEngine.from_pretrained(str(BUILDERS["qwen2_vl"](embedded_model_dir(), root / "model")))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in engine.model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    images = [str(write_image(root / f"{i}.png", (56 + 14 * (i % 3), 56), seed=i)) for i in range(requests)]
    asks = [InferRequest(messages=[{"role": "user", "content": "<image>Describe it."}], images=[image])
            for image in images]
    config = RequestConfig(max_new_tokens=tokens, temperature=0, ignore_eos=True)
    engine.infer(asks[:1], config)  # warm-up
    start = time.perf_counter()
    alone = [engine.infer([a], config)[0].token_ids for a in asks]
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(requests) as pool:
        together = list(pool.map(lambda a: engine.infer([a], config)[0].token_ids, asks))
    concurrent = time.perf_counter() - start
    engine.close()
    same = sum(a == b for a, b in zip(alone, together))
    print(f"{requests} image requests (tiny Qwen2-VL, {tokens} tokens each, load {os.getloadavg()[0]:.1f}): "
          f"sequential {sequential:.2f} s, concurrent {concurrent:.2f} s -> {sequential / concurrent:.1f}x; "
          f"{same}/{requests} concurrent answers equal their sequential ones; widest batch {engine.scheduler.widest}")


DETOK_TEXT = "Hello wörld! 你好，世界。🙂👍🏽 Ünïcödé — emoji 🧑‍🚀 and 日本語のテキスト. "


def detok_per_token(model: str, lengths: tuple[int, ...] = (16, 128, 512, 2048), repeats: int = 7) -> None:
    """Microseconds per token to turn an answer's ids into streamed text (best of `repeats`, same ids each time).
    CPU time of this thread, not wall time: on a loaded machine a run longer than one scheduler time slice waits for
    other processes, which would show as a cost growing with the answer's length."""
    from transformers import AutoTokenizer

    from swiftall.infer.detok import Answer
    from swiftall.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model(model).path)
    ids = tok(DETOK_TEXT * 100, add_special_tokens=False)["input_ids"]

    def incremental(n: int) -> None:
        answer = Answer(tok, 0, ["</stop>"], set(), emit=lambda event: None)
        for token in ids[:n]:
            answer.on_token(None, token, None, [])

    def whole(n: int) -> None:
        for k in range(1, n + 1):
            tok.decode(ids[:k], skip_special_tokens=True)

    def best(run, n: int) -> float:
        times = []
        for _ in range(repeats):
            start = time.thread_time()
            run(n)
            times.append(time.thread_time() - start)
        return min(times) / n * 1e6

    print(f"detokenizer, us of CPU per token (load {os.getloadavg()[0]:.1f}):")
    first = None
    for n in lengths:
        new, old = best(incremental, n), best(whole, n)
        first = first or (new, old)
        print(f"  {n:5d} tokens: incremental {new:6.2f} ({new / first[0]:.2f}x of 16)   "
              f"whole re-decode {old:8.2f} ({old / first[1]:.1f}x of 16)")


def random_adapters(model: str, folder: str, names: tuple[str, ...] = ("a", "b")) -> list[str]:
    """LoRA adapters (r 8 on q/k/v/o, random non-zero weights, a seed each) saved under `folder`: `name=DIR` specs
    for `deploy --adapters`. Untrained: the benchmark measures speed, and every adapter costs the same."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from swiftall.models import resolve_model

    specs = []
    for seed, name in enumerate(names, 1):
        torch.manual_seed(seed)
        net = get_peft_model(AutoModelForCausalLM.from_pretrained(resolve_model(model).path),
                             LoraConfig(r=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                        init_lora_weights=False))
        net.save_pretrained(os.path.join(folder, name))
        specs.append(f"{name}={os.path.join(folder, name)}")
    return specs


def mixed_adapters(model: str, concurrency: int, tokens: int, rounds: int = 2) -> None:
    """`deploy --adapters a=DIR b=DIR`: `concurrency` requests all for adapter a, then the same number spread over a,
    b and the base model (one batch, peft's per-row adapter choice), alternated `rounds` times on the same server;
    the best aggregate tokens/s of each and their ratio (the issue's target: mixed at least 0.8x single)."""
    import tempfile

    port = free_port()
    proc, _ = start_server(model, port, concurrency, ("--adapters", *random_adapters(model, tempfile.mkdtemp())))
    url, single, mixed = f"http://127.0.0.1:{port}", [], []
    try:
        concurrent(url, 3, 8, ("a", "b", "bench"))  # warm-up: each adapter once
        for _ in range(rounds):
            single.append(concurrent(url, concurrency, tokens, ("a",))[0])
            mixed.append(concurrent(url, concurrency, tokens, ("a", "b", "bench"))[0])
    finally:
        stop(proc)
    print(f"adapters, {concurrency} concurrent (load {os.getloadavg()[0]:.1f}): one adapter "
          f"{', '.join(f'{t:.1f}' for t in single)} tokens/s; mixed a/b/base {', '.join(f'{t:.1f}' for t in mixed)} "
          f"tokens/s -> mixed/single {max(mixed) / max(single):.2f}x (best of {rounds}; target 0.8x)")


MS_SWIFT_ARGS = "--model_type llama --template chatml --template_backend jinja --torch_dtype float32"


def start_ms_swift(args: argparse.Namespace) -> tuple[subprocess.Popen, str, str, float]:
    """ms-swift's `swift deploy` (PyTorch backend, the same batch limit) on the folder swiftall resolves the model
    to."""
    from swiftall.models import resolve_model

    if not os.path.exists(args.ms_swift):
        raise SystemExit(f"--ms_swift: no `swift` at {args.ms_swift}. Install ms-swift in its own venv (it pins "
                         "transformers<5.20, peft<0.21, trl<1.0) and pass its bin/swift, e.g. "
                         "/work/msswift-venv/bin/swift")
    port = free_port()
    command = [args.ms_swift, "deploy", "--model", str(resolve_model(args.model).path), "--infer_backend", "pt",
               "--port", str(port), "--max_batch_size", str(args.concurrency), "--served_model_name", "bench",
               *args.ms_swift_args.split()]
    url = f"http://127.0.0.1:{port}"
    from peer import openmp_env  # the thread policy swiftall's CLI chooses (utils/env.py), for ms-swift too

    env = {**os.environ, **openmp_env()}
    proc, ready = start_server(args.model, port, args.concurrency, command=command, env=env)
    print(f"ms-swift deploy start -> first answer: {ready:.1f} s")
    return proc, url, "bench", ready


def side_by_side(url: str, ms_url: str, ms_name: str, concurrency: int, tokens: int, rounds: int) -> None:
    """The same `concurrency` requests (plain bodies: no ignore_eos, which ms-swift lacks) to swiftall and to ms-swift,
    alternated `rounds` times so that both see the same load; best aggregate tokens/s of each and their ratio."""
    ours, theirs = [], []
    ask(url, 98, 8, ignore_eos=False), ask(ms_url, 98, 8, ms_name, ignore_eos=False)  # warm-up
    for _ in range(rounds):
        ours.append(concurrent(url, concurrency, tokens, ignore_eos=False))
        theirs.append(concurrent(ms_url, concurrency, tokens, (ms_name,), ignore_eos=False))
    best_ours, best_theirs = max(t for t, _, _ in ours), max(t for t, _, _ in theirs)
    print(f"vs ms-swift, {concurrency} concurrent, up to {tokens} tokens (load {os.getloadavg()[0]:.1f}): swiftall "
          f"{', '.join(f'{t:.1f}' for t, _, _ in ours)} tokens/s ({sum(n for _, n in ours[0][1])} tokens), "
          f"ms-swift {', '.join(f'{t:.1f}' for t, _, _ in theirs)} tokens/s ({sum(n for _, n in theirs[0][1])} "
          f"tokens) -> {best_ours / best_theirs:.1f}x (best of {rounds}; target 2.5x)")


def serve_alone_vs_concurrent(args: argparse.Namespace, url: str) -> None:
    ask(url, 99, 8)  # warm-up
    single = [ask(url, i, args.tokens) for i in range(args.single_runs)]
    single_tps = sum(n for _, n in single) / sum(t for t, _ in single)
    many_tps, many, wall = concurrent(url, args.concurrency, args.tokens)
    lat = [t for t, _ in many]
    print(f"1 request alone   : {single_tps:7.1f} tokens/s  latency {statistics.median([t for t, _ in single]):.1f} s "
          f"({args.single_runs} runs, {args.tokens} tokens each)")
    print(f"{args.concurrency} concurrent     : {many_tps:7.1f} tokens/s aggregate  p50 {percentile(lat, .5):.1f} s  "
          f"p95 {percentile(lat, .95):.1f} s  wall {wall:.1f} s  ({sum(n for _, n in many)} tokens)")
    print(f"ratio             : {many_tps / single_tps:.1f}x aggregate tokens/s")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--single_runs", type=int, default=2)
    parser.add_argument("--detok_only", action="store_true", help="only the detokenizer's time per token")
    parser.add_argument("--decode_only", action="store_true", help="only the decode step vs the matmul ceiling")
    parser.add_argument("--mm_only", action="store_true", help="only 8 concurrent vs 8 sequential image requests")
    parser.add_argument("--adapters_only", action="store_true", help="only the mixed-adapter vs one-adapter load")
    parser.add_argument("--ms_swift", default="", help="ms-swift's `swift` executable (its own venv): also run "
                        "`swift deploy` on the same model and prompts, side by side with swiftall")
    parser.add_argument("--ms_swift_args", default=MS_SWIFT_ARGS, help="extra `swift deploy` flags for the model")
    parser.add_argument("--ms_swift_only", action="store_true", help="with --ms_swift: only the side-by-side part")
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds of the side-by-side parts")
    args = parser.parse_args()
    parts = {"detok_only": lambda: detok_per_token(args.model), "mm_only": multimodal_batch,
             "decode_only": lambda: decode_fraction(args.model, args.concurrency, args.tokens),
             "adapters_only": lambda: mixed_adapters(args.model, args.concurrency, args.tokens, args.rounds)}
    chosen = [run for name, run in parts.items() if getattr(args, name)]
    for run in chosen:
        run()
    if chosen:
        return
    print(f"{uptime()}  cpus: {os.cpu_count()}")
    servers: list[subprocess.Popen] = []
    try:
        ms_swift = start_ms_swift(args) if args.ms_swift else None  # started first, alone: both start-ups comparable
        servers += [ms_swift[0]] if ms_swift else []
        port = free_port()
        proc, ready = start_server(args.model, port, args.concurrency)
        servers.append(proc)
        url = f"http://127.0.0.1:{port}"
        print(f"deploy start -> first answered request: {ready:.1f} s")
        if not args.ms_swift_only:
            serve_alone_vs_concurrent(args, url)
        if ms_swift:
            side_by_side(url, ms_swift[1], ms_swift[2], args.concurrency, args.tokens, args.rounds)
    finally:
        for server in servers:
            stop(server)
        print(f"after: {uptime()}")
    if args.ms_swift_only:
        return
    mixed_adapters(args.model, args.concurrency, args.tokens, args.rounds)
    one = max(forward_ceiling(args.model, 1, args.tokens) for _ in range(2))
    many = max(forward_ceiling(args.model, args.concurrency, args.tokens) for _ in range(2))
    print(f"bare forward      : batch 1 {one:.1f} tokens/s, batch {args.concurrency} {many:.1f} tokens/s -> "
          f"{many / one:.1f}x is this machine's ceiling for the ratio above")
    detok_per_token(args.model)


if __name__ == "__main__":
    main()
