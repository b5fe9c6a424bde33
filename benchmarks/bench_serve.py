"""Serving benchmark on the embedded model: `swiftall deploy` start to first answer, then one request alone vs
16 concurrent requests (64 new tokens each, ignore_eos) -- aggregate generated tokens/s, p50/p95 latency, ratio.

    .venv/bin/python benchmarks/bench_serve.py [--model smollm2-135m-instruct] [--concurrency 16] [--tokens 64]

Both measurements run side by side against the same server process, so their ratio is comparable even on a
shared machine; the load average is printed before and after. Then, with the server stopped, the model's bare
forward is timed (prefill of the same prompts, then greedy decode steps with a KV cache, no server, no scheduler)
at batch 1 and at batch 16: their tokens/s ratio is the most any batching server can reach on this machine.
"""
from __future__ import annotations

import argparse
import os
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


def ask(url: str, i: int, tokens: int) -> tuple[float, int]:
    body = {"model": "bench", "messages": [{"role": "user", "content": f"Write a story about the number {i}."}],
            "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
    start = time.perf_counter()
    r = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=1800)
    r.raise_for_status()
    return time.perf_counter() - start, r.json()["usage"]["completion_tokens"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_server(model: str, port: int, batch: int) -> tuple[subprocess.Popen, float]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "swiftall", "deploy", "--model", model, "--port", str(port),
                             "--served_model_name", "bench", "--max_batch_size", str(batch)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    ask(url, 0, 1)
    return proc, time.perf_counter() - started


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--single_runs", type=int, default=2)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}  cpus: {os.cpu_count()}")
    port = free_port()
    proc, ready = start_server(args.model, port, args.concurrency)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"deploy start -> first answered request: {ready:.1f} s")
        ask(url, 99, 8)  # warm-up
        single = [ask(url, i, args.tokens) for i in range(args.single_runs)]
        single_tps = sum(n for _, n in single) / sum(t for t, _ in single)
        start = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            many = list(pool.map(lambda i: ask(url, i, args.tokens), range(args.concurrency)))
        wall = time.perf_counter() - start
        many_tps = sum(n for _, n in many) / wall
        lat = [t for t, _ in many]
        print(f"1 request alone   : {single_tps:7.1f} tokens/s  latency {statistics.median([t for t, _ in single]):.1f} s "
              f"({args.single_runs} runs, {args.tokens} tokens each)")
        print(f"{args.concurrency} concurrent     : {many_tps:7.1f} tokens/s aggregate  p50 {percentile(lat, .5):.1f} s  "
              f"p95 {percentile(lat, .95):.1f} s  wall {wall:.1f} s  ({sum(n for _, n in many)} tokens)")
        print(f"ratio             : {many_tps / single_tps:.1f}x aggregate tokens/s")
    finally:
        proc.terminate()
        proc.wait(60)
        print(f"load after: {os.getloadavg()}")
    one = max(forward_ceiling(args.model, 1, args.tokens) for _ in range(2))
    many = max(forward_ceiling(args.model, args.concurrency, args.tokens) for _ in range(2))
    print(f"bare forward      : batch 1 {one:.1f} tokens/s, batch {args.concurrency} {many:.1f} tokens/s -> "
          f"{many / one:.1f}x is this machine's ceiling for the ratio above")


if __name__ == "__main__":
    main()
