"""Export benchmark on the embedded SmolLM2-135M-Instruct, side by side in one run: export time and file size of each
format, and single-stream greedy decode tokens/s of the pt engine (fp32), the pt engine on the GPTQ/bnb exports,
and llama.cpp on the q8_0/q4_k_m GGUFs (when llama-cpp-python is installed).

    .venv/bin/python benchmarks/bench_export.py --formats gguf-q8_0 bnb-4 --tokens 64 --out /tmp/bench-export
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace as NS

PROMPT = "Write a short story about a lighthouse keeper."


def export(fmt: str, root: Path) -> tuple[Path, float, int]:
    from swiftall.pipelines.export import export_main

    method, _, arg = fmt.partition("-")
    kw = {"gguf_type": arg} if method == "gguf" else {"quant_bits": int(arg)}
    start = time.perf_counter()
    out = export_main(NS(model="smollm2-135m-instruct", quant_method=method, export_check=False, quant_n_samples=16,
                         output_dir=str(root / fmt), overwrite=True, **kw))
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in out.iterdir() if p.suffix in (".gguf", ".safetensors"))
    return out, seconds, size


def pt_decode(model: str, tokens: int) -> float:
    from swiftall.infer import RequestConfig
    from swiftall.infer.pt import PtEngine

    engine = PtEngine.from_pretrained(model, max_batch_size=1)
    config = RequestConfig(max_new_tokens=tokens, temperature=0, ignore_eos=True)
    engine.infer([PROMPT], RequestConfig(max_new_tokens=4, temperature=0))   # warm-up
    start = time.perf_counter()
    response = engine.infer([PROMPT], config)[0]
    return response.completion_tokens / (time.perf_counter() - start)


def llama_cpp_decode(gguf: Path, tokens: int, threads: int) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=threads, verbose=False)
    ids = llm.tokenize(PROMPT.encode(), add_bos=True)
    llm.eval(ids)
    start = time.perf_counter()
    for _ in range(tokens):
        llm.eval([int(llm.scores[llm.n_tokens - 1].argmax())])
    rate = tokens / (time.perf_counter() - start)
    llm.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--formats", nargs="+", default=["gguf-q8_0", "gguf-q4_k_m", "bnb-4", "gptq-4"])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="/tmp/bench-export")
    args = parser.parse_args()
    root = Path(args.out)
    rows = [{"format": "original (pt, fp32)", "decode_tok_s": pt_decode("smollm2-135m-instruct", args.tokens)}]
    for fmt in args.formats:
        try:
            folder, seconds, size = export(fmt, root)
        except Exception as exc:  # a missing extra or quantizer: reported in the table, the others still run
            rows.append({"format": fmt, "error": str(exc).splitlines()[0]})
            continue
        row = {"format": fmt, "export_s": round(seconds, 1), "size_mb": round(size / 2**20, 1)}
        gguf = next(folder.glob("*.gguf"), None)
        try:
            row["decode_tok_s"] = (llama_cpp_decode(gguf, args.tokens, args.threads) if gguf
                                   else pt_decode(str(folder), args.tokens))
            row["engine"] = "llama.cpp" if gguf else "pt"
        except ImportError as exc:
            row["error"] = str(exc)
        rows.append(row)
    base = rows[0]["decode_tok_s"]
    for row in rows:
        if "decode_tok_s" in row:
            row["vs_pt_fp32"] = round(row["decode_tok_s"] / base, 2)
            row["decode_tok_s"] = round(row["decode_tok_s"], 1)
        print(json.dumps(row))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
