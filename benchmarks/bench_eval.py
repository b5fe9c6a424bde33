"""Evaluation throughput on the embedded model: the same generative local task (default 200 items, greedy, 16 new
tokens, exact match) scored by swiftall's native backend (the pt engine, continuous batching) and by
lm-evaluation-harness's HF backend (static batches), side by side in one process: items/s, wall time, score.

    .venv/bin/python benchmarks/bench_eval.py [--items 200] [--max_tokens 16] [--batch 16] [--model M]

Items/s counts the answering and scoring phase of each backend (model loading excluded, timed separately in the
wall time). Both backends see the same prompts through the model's chat template and stop at its end-of-turn
token; "identical answers" compares each item's answer text across the two. `uptime` is printed before and after,
since the machine may be shared. The process runs under the OpenMP wait policy the `swiftall` CLI chooses
(passive waits on a busy machine: spinning ones made single forwards 2.6-11x slower at load 10-13).
`--native_batches 16,64` runs native once
per engine batch size (--max_batch_size); lm-eval runs with `--batch` (and `--lm_eval_batches 1` adds its default).
`--no_prefix_cache` runs native without the engine's prompt-prefix reuse.

After the table it prints where native's time goes (its forwards' share of the answer time, the tokens they
computed) and an estimate of the tokens lm-eval's static batches compute for the same answers (every prompt whole,
each batch decoded to its longest answer), so the ratio can be read as tokens x per-token rate.

Measured idle on the 2-core CPU, SmolLM2-135M fp32, 1 Dec 2026 (`--items 200 --batch 64 --native_batches 64
--lm_eval_batches 16`, three runs): native b64 14.76 / 14.29 / 15.56 items/s; lm-eval b64 5.13 / 6.04 / 6.42
(2.88x / 2.37x / 2.42x), b16 4.47 / 4.42 / 4.82 (3.30x / 3.23x / 3.23x); answers identical 200/200. Native: 49 forwards over 3,938 tokens, 92-93% of its answer
time; lm-eval about 11,900 tokens. Earlier runs under load (30 Nov, load 2-17) gave native b64 2.6-3.9x lm-eval b16.
What made native fast (swiftall/infer): each prompt is ~42 tokens, of which ~33 (the chat template's system prompt
and the instruction) are shared; so (1) the shared prefix runs once and is kept (prefix_cache.py); (2) refills under
a backlog join in groups of a quarter of the batch; (3) the runner keeps twice the engine's batch in flight; (4) an
idle scheduler waits while requests sent together keep arriving, so the first does not prefill alone
(`Scheduler._gather_arrivals`); the metric libraries import before the model loads, not in the timed answers
(`import_metric_libraries`). Exact match 0.205 native vs 0.190 lm-eval on the same answers: native normalises
as SQuAD does, dropping articles; lm-eval's exact_match ignores case and punctuation only.
"""
from __future__ import annotations

import argparse
import json
import subprocess
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


def count_forwards() -> dict:
    """Counts the tokens the native engine's forwards compute (prompt tokens past the shared prefix, one per row at
    each decode step) and the time spent in them, by wrapping the scheduler's forward for this process."""
    from swiftall.infer.scheduler import Scheduler

    counts = {"tokens": 0, "forwards": 0, "seconds": 0.0}
    forward = Scheduler._forward

    def counted(self, ids, *rest, **kwargs):
        started = time.perf_counter()
        try:
            return forward(self, ids, *rest, **kwargs)
        finally:
            counts["seconds"] += time.perf_counter() - started
            counts["forwards"] += 1
            counts["tokens"] += int(rest[0][:, -ids.shape[1]:].sum())   # the mask's new columns

    Scheduler._forward = counted
    return counts


def lm_eval_tokens(rows: list[dict], native_answers: dict, tokenizer_model: str, batch: int, max_tokens: int) -> int:
    """An estimate of the tokens lm-eval's static batches compute for the same answers: every prompt whole, and each
    batch (longest prompts first, as its collator orders them) decodes until its longest answer ends."""
    from swiftall.hub.embedded import embedded_model_dir
    from transformers import AutoTokenizer

    model = embedded_model_dir() if tokenizer_model == "smollm2-135m-instruct" else tokenizer_model
    tokenizer = AutoTokenizer.from_pretrained(model)
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": r["query"]}], tokenize=False,
                                           add_generation_prompt=True) for r in rows]
    prompts = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    answers = [min(max_tokens, len(tokenizer(native_answers.get(r["id"], ""), add_special_tokens=False)["input_ids"]) + 1)
               for r in rows]   # its tokens and the end-of-turn token, or max_tokens
    order = sorted(range(len(rows)), key=lambda i: -prompts[i])
    total = sum(prompts)
    for start in range(0, len(order), batch):
        group = order[start:start + batch]
        total += len(group) * max(answers[i] for i in group)
    return total


def run(backend: str, data: Path, out: Path, args: argparse.Namespace, batch: int) -> dict:
    from swiftall.pipelines.eval import eval_main

    counts = count_forwards() if backend == "native" else None
    started = time.perf_counter()
    report = eval_main({"model": args.model, "eval_dataset": [str(data)], "eval_backend": backend,
                        "eval_output_dir": str(out), "max_batch_size": batch, "eval_progress": False,
                        "eval_generation_config": {"max_tokens": args.max_tokens, "temperature": 0}})
    wall = time.perf_counter() - started
    result = report["datasets"]["repeat"]
    label = f"{backend} b{batch}" + (" no-prefix" if backend == "native" and args.no_prefix_cache else "")
    return {"backend": label, "wall_s": round(wall, 1), "answer_s": result.get("seconds"),
            "items_per_s": result.get("items_per_s"), "exact_match": result["metrics"]["exact_match"]["value"],
            "ci95": result["metrics"]["exact_match"]["ci95"], "n": result["n"],
            "answers": answers(Path(report["run_dir"]) / "predictions" / "repeat.jsonl", backend == "lm_eval"),
            "forwards": dict(counts) if counts else None}


def answers(path: Path, lm_eval: bool) -> dict[str, str]:
    """id -> the answer's text, stripped (lm-eval's predictions keep its filtered responses as JSON)."""
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        raw = json.loads(record["raw"]) if lm_eval else record["raw"]
        while isinstance(raw, list):
            raw = raw[0] if raw else ""
        out[str(record["id"])] = str(raw).strip()
    return out


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    from swiftall.utils.env import choose_openmp_waits

    choose_openmp_waits()  # as the CLI sets it (before torch loads OpenMP); the same for both backends
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--max_tokens", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="lm-eval's batch size, and native's first run")
    parser.add_argument("--native_batches", default="16,64", help="native runs: the engine's --max_batch_size")
    parser.add_argument("--lm_eval_batches", default="", help="more lm-eval runs after --batch (its default is 1)")
    parser.add_argument("--no_prefix_cache", action="store_true", help="native without the engine's prefix reuse")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    if args.no_prefix_cache:
        import swiftall.infer.prefix_cache as prefix_cache

        prefix_cache.MIN_PREFIX = 1 << 30  # no prefix is ever long enough: every prompt prefills in full
    print(f"before: {load()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        data = task_file(Path(tmp), args.items)
        items = [json.loads(line) for line in data.read_text().splitlines()]
        rows = [run("native", data, Path(tmp) / "out", args, int(b)) for b in args.native_batches.split(",")]
        try:
            import lm_eval  # noqa: F401

            for b in [args.batch, *(int(x) for x in args.lm_eval_batches.split(",") if x)]:
                rows.append(run("lm_eval", data, Path(tmp) / "out", args, b))
        except ImportError:
            print("lm_eval is not installed (pip install 'swiftall[lm_eval]'); native only", file=sys.stderr)
    print(f"after: {load()}", file=sys.stderr)
    print(f"{'backend':<20} {'items/s':>8} {'answer s':>9} {'wall s':>7} {'exact match':>12}  95% CI  n")
    for r in rows:
        print(f"{r['backend']:<20} {r['items_per_s']:>8} {r['answer_s']:>9} {r['wall_s']:>7} {r['exact_match']:>12}  "
              f"{r['ci95']}  {r['n']}")
    native = [r for r in rows if r["backend"].startswith("native")]
    for r in native:   # where the native time goes: the model's forwards, over how many tokens
        f = r["forwards"]
        print(f"{r['backend']}: {f['forwards']} forwards over {f['tokens']} tokens took {f['seconds']:.1f} s, "
              f"{f['seconds'] / r['answer_s']:.0%} of its answer time ({f['tokens'] / f['seconds']:.0f} tokens/s)")
    for reference in [r for r in rows if r["backend"].startswith("lm_eval")]:
        tokens = lm_eval_tokens(items, native[0]["answers"], args.model, int(reference["backend"].split("b")[-1]),
                                args.max_tokens)
        print(f"{reference['backend']}: about {tokens} tokens, {tokens / reference['answer_s']:.0f} tokens/s (every "
              "prompt whole; each static batch decodes to its longest answer)")
    for reference in [r for r in rows if r["backend"].startswith("lm_eval")]:
        for r in native:
            if reference["items_per_s"] and r["items_per_s"]:
                ratio = r["items_per_s"] / reference["items_per_s"]
                same = sum(r["answers"].get(k) == v for k, v in reference["answers"].items())
                print(f"{r['backend']} / {reference['backend']} items/s: {ratio:.2f}x; identical answers "
                      f"{same}/{len(reference['answers'])}")


if __name__ == "__main__":
    main()
