"""--eval_dataset values -> EvalTasks (items + where they came from), before any model loads.

Forms: a registered benchmark (`gsm8k`, `mmlu:anatomy/virology`, `arc#100`), a local copy of one
(`gsm8k=path/to/test.jsonl`, rows in the hub's own columns), a local file in swiftall's formats (`data.jsonl`,
`data.csv#50`), a dataset from `swiftall dataset list` or a hub id in swiftall's formats. Hub benchmarks are
cached as items after the first read; offline or unreachable, an uncached one fails at once with the dataset,
its hub id and how to point at a local copy."""
from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import random
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

from ..data.read import read_path, split_spec
from ..data.registry import list_datasets, load_extensions
from ..data.sources import resolve_source
from ..utils import env
from ..utils.errors import DataError
from . import cache
from .benchmarks import Benchmark, get_benchmark, list_benchmarks
from .items import EvalItem, infer_eval_type, items_from_rows


@dataclass
class EvalTask:
    name: str                                  # the name in reports and predictions/<name>.jsonl
    eval_type: str
    items: list[EvalItem]
    source: dict[str, Any]                     # kind, path or hub id, subsets, split, revision
    benchmark: Optional[Benchmark] = None
    fewshot_pool: list[EvalItem] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)   # --eval_dataset_args for this dataset

    @property
    def data_hash(self) -> str:
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(json.dumps([item.id, item.messages, item.references, item.choices, item.answer_index],
                                     default=str, ensure_ascii=False).encode())
        return digest.hexdigest()[:16]


def split_values(values: Any) -> list[str]:
    """['a,b', 'c'] or 'a, b c' -> ['a', 'b', 'c'] (comma or space separated, as the seed's form writes them)."""
    values = [values] if isinstance(values, str) else list(values or [])
    return [part for value in values for part in str(value).replace(",", " ").split() if part]


def subsample(items: list[EvalItem], limit: Optional[int], seed: int) -> list[EvalItem]:
    """At most `limit` items, drawn evenly over the set (seeded, original order kept), so a limited run of a
    benchmark sorted by subject still sees every subject."""
    if not limit or limit >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_task(spec: str, cfg: Any, eval_type: Optional[str], limit: Optional[int], seed: int,
              dataset_args: dict[str, Any]) -> EvalTask:
    name, local = (spec.split("=", 1) + [None])[:2] if "=" in spec else (spec, None)
    base, count = split_spec(local or name) if local else split_spec(name)
    if local:
        count = split_spec(name)[1] or count
        name = split_spec(name)[0]
    bench_name, _, subsets = name.partition(":")
    benchmark = get_benchmark(bench_name) if not Path(name).exists() else None
    keys = (bench_name, name, Path(base).stem)   # a local file's options go under its path or its name
    options = dict(next((dataset_args[k] for k in keys if k in dataset_args), None) or {})
    if local and benchmark is None:
        raise DataError(f"--eval_dataset {spec}: '{bench_name}' is not a registered benchmark{_suggest(bench_name)}; "
                        "NAME=path gives a local copy of a benchmark (swiftall eval --list)")
    if benchmark is not None:
        chosen = tuple(s for s in subsets.split("/") if s) or benchmark.subsets
        task = _benchmark_task(benchmark, chosen, Path(base) if local else None, cfg, options)
    else:
        task = _local_task(name, base, cfg, eval_type, options)
    task.items = subsample(task.items, count or limit, seed)
    if not task.items:
        raise DataError(f"--eval_dataset {spec}: no rows to evaluate")
    return task


def _local_task(name: str, base: str, cfg: Any, eval_type: Optional[str], options: dict) -> EvalTask:
    load_extensions(cfg)
    path = Path(base).expanduser()
    if not path.exists() and "/" not in base and not _registered_data(base):
        raise DataError(f"--eval_dataset {name}: no such file, not a registered benchmark{_suggest(base)} and not a "
                        "dataset from 'swiftall dataset list'; see 'swiftall eval --list'")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"--eval_dataset {name}: {path} is empty; give rows in a swiftall format (conversations, "
                        "query/response or question/choices/answer)")
    source = resolve_source(base, cfg)
    try:
        rows = list(source.rows(cfg))
    except DataError as exc:  # the data readers speak of --dataset; here the file came from --eval_dataset
        raise DataError(str(exc).replace("of --dataset", "of --eval_dataset")) from None
    items = items_from_rows(rows, getattr(cfg, "columns", None) or {}, label=name)
    kind = eval_type or options.get("eval_type") or infer_eval_type(items)
    where = {"kind": source.kind, "path": str(source.path.resolve()) if source.path else None,
             "hub_id": source.repo_id, "fingerprint": source.fingerprint()}
    label = path.stem if path.exists() else base.replace("/", "__")
    return EvalTask(label, kind, items, where, None, list(items), options)


def _registered_data(name: str) -> bool:
    return any(meta.name == name for meta in list_datasets())


def _suggest(name: str) -> str:
    names = sorted({b.name for b in list_benchmarks()} | {m.name for m in list_datasets()})
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


# ---- benchmarks -----------------------------------------------------------------------------------------
def _benchmark_task(benchmark: Benchmark, subsets: tuple[str, ...], local: Optional[Path], cfg: Any,
                    options: dict) -> EvalTask:
    if benchmark.needs_opt_in and not options.get(benchmark.needs_opt_in):
        raise DataError(f"--eval_dataset {benchmark.name} runs the model's code on this machine; allow it with "
                        f"--eval_dataset_args '{{\"{benchmark.name}\": {{\"{benchmark.needs_opt_in}\": true}}}}' "
                        "(it runs in a subprocess with time and memory limits, no network isolation)")
    split = options.get("split", benchmark.split)
    if local is not None:
        if not local.exists():
            raise DataError(f"--eval_dataset {benchmark.name}={local}: no such file or folder")
        items = _convert(benchmark, ((row.data, row.where) for row in read_path(local)), "")
        source = {"kind": "local copy", "path": str(local.resolve()), "hub_id": benchmark.hf_id}
        return EvalTask(benchmark.name, benchmark.eval_type, items, source, benchmark, [], options)
    items, source = _hub_items(benchmark, subsets, split, cfg)
    pool: list[EvalItem] = []
    if benchmark.fewshot_split and int(getattr(cfg, "eval_num_fewshot", 0) or 0) > 0:
        pool, _ = _hub_items(benchmark, subsets, benchmark.fewshot_split, cfg)
    return EvalTask(benchmark.name, benchmark.eval_type, items, source, benchmark, pool, options)


def _convert(benchmark: Benchmark, rows: Any, subset: str) -> list[EvalItem]:
    items = []
    for i, (data, where) in enumerate(rows):
        try:
            items.append(benchmark.to_item(data, i, subset))
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise DataError(f"{where}: not a row of {benchmark.name} ({type(exc).__name__}: {exc}); a local copy "
                            f"must keep the hub's columns ({benchmark.hf_id})") from None
    return items


def _hub_items(benchmark: Benchmark, subsets: tuple[str, ...], split: str, cfg: Any
               ) -> tuple[list[EvalItem], dict[str, Any]]:
    hub = "modelscope" if getattr(cfg, "hub", None) == "modelscope" and benchmark.ms_id else "huggingface"
    repo = benchmark.ms_id if hub == "modelscope" else (benchmark.hf_id or benchmark.ms_id)
    revision = getattr(cfg, "dataset_revision", None)
    items: list[EvalItem] = []
    for subset in subsets or ("",):
        folder = cache.cache_dir(benchmark.name, repo, subset, split, revision)
        cached = cache.load_items(folder)
        if cached is None:
            with _reachable_or_offline(benchmark, repo, hub):
                rows = _read_hub(benchmark, repo, hub, subset, split, revision)
            cache.save_items(folder, rows, {"hub": hub, "hub_id": repo, "subset": subset, "split": split,
                                            "revision": revision})
            cached = cache.load_items(folder)
        items.extend(cached[0])
    source = {"kind": "hub", "hub": hub, "hub_id": repo, "subsets": list(subsets), "split": split,
              "revision": revision or "main", "cache": str(cache.cache_dir(benchmark.name, repo, "", split).parent)}
    return items, source


def _read_hub(benchmark: Benchmark, repo: str, hub: str, subset: str, split: str, revision: Optional[str]
              ) -> list[EvalItem]:
    from ..data.hub_load import load_hub_rows

    try:
        rows = list(load_hub_rows(repo, hub, [subset] if subset else [], [split], revision=revision,
                                  label=benchmark.name))
    except DataError as exc:
        text = str(exc)
        why = ("offline mode is on (HF_HUB_OFFLINE) and it is not in the datasets cache" if env.hf_offline() else
               "the hub is unreachable from this machine and it is not in the datasets cache"
               if "OfflineModeIsEnabled" in text else text)
        raise DataError(offline_message(benchmark, repo, why)) from None
    return _convert(benchmark, ((row.data, row.where) for row in rows), subset)


def offline_message(benchmark: Benchmark, repo: str, why: str) -> str:
    return (f"--eval_dataset {benchmark.name}: cannot load it from the hub ({repo}): {why[:400]}. Point at a local "
            f"copy instead: --eval_dataset {benchmark.name}=path/to/{benchmark.split}.jsonl (rows in the hub's "
            f"columns, or a datasets save_to_disk folder); once read online it is cached under "
            f"{env.cache_root() / 'eval'} and never fetched again")


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A TCP connection to the hub within `timeout` (DNS included), so an unreachable network fails fast."""
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


@contextlib.contextmanager
def _reachable_or_offline(benchmark: Benchmark, repo: str, hub: str) -> Iterator[None]:
    """Online: as is. Offline (HF_HUB_OFFLINE) or the hub unreachable: datasets reads only its own cache."""
    if hub == "modelscope":
        yield
        return
    if env.hf_offline() or not hub_reachable():
        import datasets.config
        import huggingface_hub.constants as hf_constants

        saved = (datasets.config.HF_HUB_OFFLINE, hf_constants.HF_HUB_OFFLINE)
        datasets.config.HF_HUB_OFFLINE = hf_constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            datasets.config.HF_HUB_OFFLINE, hf_constants.HF_HUB_OFFLINE = saved
        return
    yield
