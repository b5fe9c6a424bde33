"""Web UI benchmark on the embedded model.

    .venv/bin/python benchmarks/bench_webui.py [--repeats 3] [--tokens 32]

1. Start: time from launching `swiftall webui` (a new process) to its page answering HTTP 200 (median of
   --repeats; target under 5 s: gradio is imported once, torch only when a model is loaded, after the page is up).
2. Cold first answer: `swiftall infer --query Q` from process start to exit, against `swiftall webui --model M`
   from process start to the first /chat answer through gradio_client (both load the model once, greedy, the same
   prompt and --max_new_tokens); the two alternate --cold_repeats times, medians compared. The time to the page
   answering with --model (the model loading beside it) is printed too.
3. Warm answer: with the model loaded, one answer through the page's /chat endpoint (gradio_client) against the
   page's engine (the same options, in a process of its own as in the page) streaming the same answer called
   directly from this process: the difference is Gradio's (HTTP, queue, streamed events, gradio_client).
The load average is printed before and after: the machine is shared, so compare numbers of one run.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PROMPT = "Give three tips for staying focused while studying."
MODEL = "smollm2-135m-instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_page(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"swiftall webui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the page did not answer")


def start_webui(runs: str, *extra: str) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "swiftall", "webui", "--port", str(port), "--runs_dir", runs,
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_page(url, proc)
    return proc, url, started


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(2)
    proc.wait(60)


def bench_start(repeats: int, runs: str) -> list[float]:
    times = []
    for _ in range(repeats):
        proc, _, started = start_webui(runs)
        times.append(time.perf_counter() - started)
        stop(proc)
    return times


def bench_cold(tokens: int, runs: str) -> tuple[float, float, float, bool]:
    from gradio_client import Client

    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "swiftall", "infer", "--model", MODEL, "--query", PROMPT,
                          "--max_new_tokens", str(tokens), "--temperature", "0"], capture_output=True, text=True,
                         check=True)
    infer_s = time.perf_counter() - started
    proc, url, started = start_webui(runs, "--model", MODEL)
    page_s = time.perf_counter() - started
    answer = Client(url, verbose=False).predict(PROMPT, "", tokens, 0.0, api_name="/chat")
    webui_s = time.perf_counter() - started
    stop(proc)
    return infer_s, webui_s, page_s, out.stdout.strip() == answer.strip()


def bench_warm(tokens: int, repeats: int, runs: str) -> tuple[list[float], list[float]]:
    from gradio_client import Client

    from swiftall.config import WebuiConfig
    from swiftall.infer import InferRequest, RequestConfig
    from swiftall.pipelines.webui import model_process
    from swiftall.webui.app import engine_pool

    proc, url, _ = start_webui(runs, "--model", MODEL)
    pool = engine_pool(WebuiConfig.from_any(["--model", MODEL, "--runs_dir", runs]), model_process)
    engine = pool.get(*pool.default_model())  # the page's engine, in a process of its own, without the page
    client = Client(url, verbose=False)
    config = RequestConfig(max_new_tokens=tokens, temperature=0.0)
    request = InferRequest(messages=[{"role": "user", "content": PROMPT}])
    direct, via_page = [], []
    for _ in range(repeats + 1):  # the first round warms both up and is not counted
        started = time.perf_counter()
        "".join(engine.stream(request, config))  # what the page's /chat calls
        direct.append(time.perf_counter() - started)
        started = time.perf_counter()
        client.predict(PROMPT, "", tokens, 0.0, api_name="/chat")
        via_page.append(time.perf_counter() - started)
    pool.close()
    stop(proc)
    return direct[1:], via_page[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--cold_repeats", type=int, default=2)
    args = parser.parse_args()
    runs = tempfile.mkdtemp(prefix="bench-webui-")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    start = bench_start(args.repeats, runs)
    print(f"swiftall webui -> page answering: median {statistics.median(start):.2f}s "
          f"(runs: {', '.join(f'{t:.2f}' for t in start)}; target < 5 s)")
    cold = [bench_cold(args.tokens, runs) for _ in range(args.cold_repeats)]
    infer_s, webui_s, page_s = (statistics.median(c[i] for c in cold) for i in range(3))
    print(f"cold first answer (median of {len(cold)}): swiftall infer --query {infer_s:.2f}s, swiftall webui start "
          f"to first /chat answer {webui_s:.2f}s ({100 * (webui_s / infer_s - 1):+.0f}%; target under +10%; runs "
          f"{', '.join(f'{c[1] / c[0] - 1:+.0%}' for c in cold)}); same answer: {all(c[3] for c in cold)}; "
          f"page answering with --model {page_s:.2f}s")
    direct, via_page = bench_warm(args.tokens, args.repeats, runs)
    d, p = statistics.median(direct), statistics.median(via_page)
    print(f"warm answer ({args.tokens} tokens): engine {d:.2f}s, through the page's /chat {p:.2f}s "
          f"({100 * (p / d - 1):+.0f}%; target under +10%)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
