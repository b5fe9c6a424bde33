"""Evaluation throughput on the embedded model: the same generative local task (default 200 items, greedy, 16 new
tokens, exact match) scored by swiftall's native backend (the pt engine, continuous batching) and by
lm-evaluation-harness's HF backend (static batches), side by side in one process: items/s, wall time, score.

    .venv/bin/python benchmarks/bench_eval.py [--items 200] [--max_tokens 16] [--batch 16] [--model M]

Items/s counts the answering and scoring phase of each backend (model loading excluded, timed separately in the
wall time). Both backends see the same prompts through the model's chat template and stop at its end-of-turn
token. The load average is printed before and after, since the machine may be shared.

Measured on the shared 2-core CPU (load average 4-6 from other jobs, SmolLM2-135M fp32, 200 items, 16 tokens):
native 0.27 items/s (745 s), lm-eval HF 0.52 items/s (388 s), exact match 0.205 [0.155, 0.266] vs 0.190
[0.142, 0.250] (3 of 200 items differ). The issue's target (native >= 3x lm-eval) is NOT met: the gap is the pt
engine's forward, not the eval runner -- on 48 of these items, engine.infer(all) took 38 s, the eval runner 30 s,
and model.generate in static batches of 16 (what lm-eval does) 15 s; timing the scheduler on 32 items, its 35
forwards took 25.4 of 25.7 s (4 prefills 10.5 s, 30 decode steps 14.8 s).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("apple river stone cloud green quick silver table window garden ocean paper music light shadow mountain "
         "forest little yellow purple dragon castle bridge winter summer orange rocket pencil planet violin "
         "island candle copper desert falcon harbor jungle lemon marble meadow").split()


def task_file(folder: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        word = WORDS[i % len(WORDS)]
        rows.append({"id": str(i), "query": f"Repeat this word exactly once, with nothing else: {word}{i}",
                     "response": f"{word}{i}"})
    path = folder / "repeat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(backend: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    from swiftall.pipelines.eval import eval_main

    started = time.perf_counter()
    report = eval_main({"model": args.model, "eval_dataset": [str(data)], "eval_backend": backend,
                        "eval_output_dir": str(out), "max_batch_size": args.batch, "eval_progress": False,
                        "eval_generation_config": {"max_tokens": args.max_tokens, "temperature": 0}})
    wall = time.perf_counter() - started
    result = report["datasets"]["repeat"]
    return {"backend": backend, "wall_s": round(wall, 1), "answer_s": result.get("seconds"),
            "items_per_s": result.get("items_per_s"), "exact_match": result["metrics"]["exact_match"]["value"],
            "ci95": result["metrics"]["exact_match"]["ci95"], "n": result["n"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--max_tokens", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        data = task_file(Path(tmp), args.items)
        rows = [run("native", data, Path(tmp) / "out", args)]
        try:
            import lm_eval  # noqa: F401

            rows.append(run("lm_eval", data, Path(tmp) / "out", args))
        except ImportError:
            print("lm_eval is not installed (pip install 'swiftall[lm_eval]'); native only", file=sys.stderr)
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)
    print(f"{'backend':<9} {'items/s':>8} {'answer s':>9} {'wall s':>7} {'exact match':>12}  95% CI  n")
    for r in rows:
        print(f"{r['backend']:<9} {r['items_per_s']:>8} {r['answer_s']:>9} {r['wall_s']:>7} {r['exact_match']:>12}  "
              f"{r['ci95']}  {r['n']}")
    if len(rows) == 2 and rows[1]["items_per_s"]:
        print(f"native / lm_eval items/s: {rows[0]['items_per_s'] / rows[1]['items_per_s']:.2f}x")


if __name__ == "__main__":
    main()
