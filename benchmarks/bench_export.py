"""Export benchmark on the embedded SmolLM2-135M-Instruct, side by side in one run: export time and file size of each
format, and single-stream greedy decode tokens/s of the pt engine (fp32), the pt engine on the GPTQ/bnb exports,
and the llama_cpp backend (swiftall's engine) on the q8_0/q4_k_m GGUFs, next to llama.cpp's own decode loop on the
same file (Llama.generate, no swiftall code: what the backend costs on top).

Decode rate = tokens after the first / seconds from the first token to the last (prompt processing left out), the
median of --repeats runs, every engine given the same --threads (torch.set_num_threads for pt, n_threads for
llama.cpp; llama.cpp's threads spin while they wait for each other, so on a loaded machine fewer is faster).

    .venv/bin/python benchmarks/bench_export.py --formats gguf-q8_0 gguf-q4_k_m bnb-4 gptq-4 --tokens 64 --threads 1
    .venv/bin/python benchmarks/bench_export.py --formats gguf-q8_0 --servers   # + deploy vs llama.cpp's server
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from types import SimpleNamespace as NS

MODEL = "smollm2-135m-instruct"
PROMPT = "Write a short story about a lighthouse keeper."


def export(fmt: str, root: Path) -> tuple[Path, float, int]:
    from swiftall.pipelines.export import export_main

    method, _, arg = fmt.partition("-")
    kw = {"gguf_type": arg} if method == "gguf" else {"quant_bits": int(arg)}
    start = time.perf_counter()
    out = export_main(NS(model=MODEL, quant_method=method, export_check=False, quant_n_samples=16,
                         output_dir=str(root / fmt), overwrite=True, **kw))
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.iterdir() if p.suffix in (".gguf", ".safetensors"))
    return out, seconds, size


def engine_decode(engine, tokens: int) -> float:
    """Decode tokens/s of one streamed greedy answer of exactly `tokens` tokens."""
    from swiftall.infer import RequestConfig

    config = RequestConfig(max_new_tokens=tokens, temperature=0, ignore_eos=True)
    stamps, count = [], 0
    for event in engine.stream_events(PROMPT, config):
        stamps.append(time.perf_counter())
        count = event.completion_tokens or count   # the last event carries the answer's token count
    return (count - 1) / (stamps[-1] - stamps[0])   # the first event's token came with the prompt


class Timed:
    """One engine under test: `rate(tokens)` is its decode tokens/s on one answer."""

    def __init__(self, label: str, engine_name: str, engine, threads: int):
        self.label, self.engine_name, self.engine, self.threads = label, engine_name, engine, threads
        self.rates: list[float] = []

    def rate(self, tokens: int) -> float:
        import torch

        torch.set_num_threads(self.threads)   # the pt engine's loader sets the machine's core count
        return engine_decode(self.engine, tokens)

    def close(self) -> None:
        self.engine.close()


class OwnLoop(Timed):
    """llama.cpp's own greedy loop (Llama.generate) on the backend's prompt ids: no swiftall code between tokens."""

    def __init__(self, label: str, gguf: Path, threads: int, prompt_ids: list[int]):
        import llama_cpp

        llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=1024, n_threads=threads, n_threads_batch=threads,
                              verbose=False)
        super().__init__(label, "llama.cpp's own loop", llm, threads)
        self.ids = prompt_ids

    def rate(self, tokens: int) -> float:
        stamps = []
        for _ in self.engine.generate(self.ids, temp=0.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) == tokens:
                break
        self.engine.reset()
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def engines_for(label: str, folder: Path, threads: int) -> list[Timed]:
    gguf = next(folder.glob("*.gguf"), None) if folder.is_dir() else None
    if gguf is None:
        from swiftall.infer.pt import PtEngine

        return [Timed(label, "pt", PtEngine.from_pretrained(str(folder), max_batch_size=1), threads)]
    from swiftall.infer.llama_cpp import LlamaCppEngine

    backend = Timed(label, "llama_cpp backend", LlamaCppEngine(str(gguf), n_threads=threads), threads)
    return [backend, OwnLoop(label, gguf, threads, backend.engine.prompt_ids(PROMPT))]


def export_all(formats: list[str], root: Path) -> tuple[list[dict], dict[str, Path]]:
    rows, folders = [], {}
    for fmt in formats:
        try:
            folder, seconds, size = export(fmt, root)
        except Exception as exc:  # a missing extra or quantizer: reported in the table, the others still run
            rows.append({"format": fmt, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
            continue
        rows.append({"format": fmt, "export_s": round(seconds, 1), "size_mb": round(size / 2**20, 1)})
        folders[fmt] = folder
    return rows, folders


def measure_all(timed: list[Timed], tokens: int, repeats: int) -> None:
    """Round-robin: every engine once per round, so a change of machine load hits all of them alike."""
    for t in timed:
        t.rate(4)   # warm-up
    for _ in range(repeats):
        for t in timed:
            t.rates.append(t.rate(tokens))


def report(rows: list[dict], timed: list[Timed]) -> list[dict]:
    sizes = {r["format"]: r for r in rows}
    out = [r for r in rows if "error" in r]
    base = statistics.median(timed[0].rates)
    for t in timed:
        rate = statistics.median(t.rates)
        row = {"format": t.label, "engine": t.engine_name, "decode_tok_s": round(rate, 1),
               "vs_pt_fp32": round(rate / base, 2), "runs": [round(x, 1) for x in t.rates]}
        if t.engine_name != "llama.cpp's own loop":
            row.update({k: v for k, v in sizes.get(t.label, {}).items() if k in ("export_s", "size_mb")})
        out.append(row)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind: str, gguf: Path, threads: int):
    """(process, base url): llama.cpp's own OpenAI server, or `swiftall deploy --infer_backend llama_cpp`."""
    import subprocess
    import sys

    import httpx

    port = free_port()
    if kind == "llama.cpp server":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--port", str(port), "--n_ctx", "1024",
               "--n_threads", str(threads), "--n_threads_batch", str(threads)]
    else:
        cmd = [sys.executable, "-m", "swiftall", "deploy", "--model", str(gguf), "--infer_backend", "llama_cpp",
               "--port", str(port), "--max_length", "1024"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(url + "/models", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(1)
    proc.kill()
    raise RuntimeError(f"{kind} did not start: {' '.join(cmd)}")


def server_rate(url: str, tokens: int) -> float:
    """Decode tokens/s of one streamed greedy chat answer: content chunks after the first / their time span."""
    import httpx

    model = httpx.get(url + "/models", timeout=30).json()["data"][0]["id"]
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": tokens,
            "temperature": 0, "stream": True}
    stamps = []
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.read()[:300]!r}")
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"] and \
                    json.loads(line[6:])["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def server_rows(gguf: Path, label: str, args: argparse.Namespace) -> list[dict]:
    """swiftall deploy --infer_backend llama_cpp vs llama.cpp's own server on one GGUF, requests alternating."""
    kinds = ["swiftall deploy (llama_cpp)", "llama.cpp server"]
    servers = {k: start_server(k, gguf, args.threads) for k in kinds}
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for k in kinds:
            server_rate(servers[k][1], 4)   # warm-up
        for _ in range(args.repeats):
            for k in kinds:
                rates[k].append(server_rate(servers[k][1], args.tokens))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(30)
    ours, theirs = (statistics.median(rates[k]) for k in kinds)
    return [{"format": label, "engine": k, "decode_tok_s": round(statistics.median(rates[k]), 1),
             "runs": [round(x, 1) for x in rates[k]]} for k in kinds] + \
        [{"format": label, "swiftall_vs_llama_cpp_server": round(ours / theirs, 3)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", default=["gguf-q8_0", "gguf-q4_k_m", "bnb-4", "gptq-4"])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="/tmp/bench-export")
    parser.add_argument("--servers", action="store_true", help="also: swiftall deploy --infer_backend llama_cpp vs "
                        "llama.cpp's own server (pip install 'llama-cpp-python[server]') on each GGUF, over HTTP")
    args = parser.parse_args()
    root = Path(args.out)
    print(json.dumps({"load_before": os.getloadavg(), "threads": args.threads, "tokens": args.tokens}), flush=True)
    rows, folders = export_all(args.formats, root)
    from swiftall.models import resolve_model

    timed = engines_for("original (fp32)", resolve_model(MODEL).path, args.threads)
    for fmt, folder in folders.items():
        timed += engines_for(fmt, folder, args.threads)
    try:
        measure_all(timed, args.tokens, args.repeats)
    finally:
        for t in timed:
            t.close()
    print(f"\n{'format':<16} {'engine':<22} {'export s':>8} {'size MB':>8} {'decode tok/s':>12} {'vs pt fp32':>10}")
    for row in report(rows, timed):
        print(json.dumps(row), flush=True) if "error" in row else print(
            f"{row['format']:<16} {row['engine']:<22} {row.get('export_s', ''):>8} {row.get('size_mb', ''):>8} "
            f"{row['decode_tok_s']:>12.1f} {row['vs_pt_fp32']:>9.2f}x  runs {row['runs']}")
    if args.servers:
        for fmt, folder in folders.items():
            gguf = next(folder.glob("*.gguf"), None)
            for row in server_rows(gguf, fmt, args) if gguf else []:
                print(json.dumps(row), flush=True)
    print(json.dumps({"load_after": os.getloadavg()}))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
