"""A --dataset value -> a Source: where rows come from, how to read them, and a fingerprint for the cache.

Forms: a file or folder (JSONL/JSON/CSV/TSV/Parquet, a datasets save_to_disk folder, a `swiftall prepare`
folder), a registered name (`swiftall dataset list`, --custom_dataset_info, --plugin), or a hub id; each may
carry subsets and a row count: `NAME:SUBSET1/SUBSET2#N`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..utils.errors import DataError
from .read import PREPARED_MARKER, Row, is_prepared, read_path, read_prepared, sample, split_spec
from .registry import DatasetMeta, builtin_path, get_dataset


@dataclass
class Source:
    spec: str
    kind: str                          # local | hub | prepared
    path: Optional[Path] = None
    meta: Optional[DatasetMeta] = None
    repo_id: Optional[str] = None
    hub: str = "huggingface"
    subsets: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train",)
    count: Optional[int] = None
    extra: dict = field(default_factory=dict)

    @property
    def cache_spec(self) -> str:
        """What the encoding cache key takes from the spec: a local file or prepared folder is named by its
        fingerprint (resolved paths or rows), so `./prepared`, `prepared` and its absolute path share a cache."""
        if self.kind in ("local", "prepared") and self.meta is None:
            return f"{self.kind}#{self.count}"
        return self.spec

    def fingerprint(self) -> str:
        if self.kind == "prepared":
            return "prepared:" + json.loads((self.path / PREPARED_MARKER).read_text())["fingerprint"]
        if self.kind == "local":
            return "local:" + files_fingerprint(self.path)
        return f"hub:{self.hub}:{self.repo_id}:{self.subsets}:{self.splits}"

    def rows(self, args: Any, split: str = "train") -> Iterator[Row]:
        streaming = bool(getattr(args, "streaming", False))
        if self.kind == "prepared":
            rows: Any = read_prepared(self.path, split)
        elif self.kind == "local":
            rows = read_path(self.path, text_files=_pretraining(args))
        else:
            from .hub_load import load_hub_rows

            rows = load_hub_rows(self.repo_id, self.hub, self.subsets, self.splits, streaming,
                                 getattr(args, "dataset_revision", None), label=self.spec)
        rows = self._adapt(rows, args)
        return iter(sample(rows, self.count, getattr(args, "data_seed", 42), streaming))

    def _adapt(self, rows: Iterator[Row], args: Any) -> Iterator[Row]:
        meta = self.meta
        names = _names(args) if meta is not None and meta.needs_model_name else None
        for row in rows:
            if row.error is None and meta is not None:
                if meta.preprocess is not None:
                    try:
                        row.data = meta.preprocess(row.data)
                    except Exception as exc:
                        row.error = (f"{row.where}: the preprocess function of dataset '{meta.name}' failed: "
                                     f"{type(exc).__name__}: {exc}")
                for old, new in meta.columns.items():
                    if old in row.data and old != new:
                        row.data[new] = row.data.pop(old)
                if names:
                    row.data = {k: _fill(v, *names) for k, v in row.data.items()}
            yield row


def files_fingerprint(path: Path) -> str:
    """Paths, sizes and modification times of every file under path: changes whenever the data does."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _names(args: Any) -> tuple[str, str]:
    names, authors = list(getattr(args, "model_name", []) or []), list(getattr(args, "model_author", []) or [])
    if not names or not authors:
        raise DataError("the self-cognition dataset needs --model_name NAME and --model_author AUTHOR")
    return names[0], authors[0]


def _fill(value: Any, name: str, author: str) -> Any:
    if isinstance(value, str):
        return value.replace("{{NAME}}", name).replace("{{AUTHOR}}", author)
    return value


def looks_like_hub_id(value: str) -> bool:
    parts = value.split("/")
    return len(parts) == 2 and all(parts) and not value.startswith((".", "/", "~")) and \
        not value.endswith(tuple(f".{s}" for s in ("jsonl", "json", "csv", "tsv", "parquet")))


def resolve_source(spec: str, args: Any, flag: str = "--dataset") -> Source:
    name, count = split_spec(spec)
    path = Path(name).expanduser()
    if path.exists() and get_dataset(name) is None:
        return Source(spec, "prepared" if is_prepared(path) else "local", path=path, count=count)
    subsets: tuple[str, ...] = ()
    if ":" in name and not path.exists():
        name, _, sub = name.partition(":")
        subsets = tuple(s for s in sub.split("/") if s)
    meta = get_dataset(name)
    hub = getattr(args, "hub", "huggingface") or "huggingface"
    if meta is not None:
        if meta.builtin_file:
            return Source(spec, "local", path=builtin_path(meta), meta=meta, count=count)
        if meta.path:
            local = Path(meta.path)
            if not local.exists():
                raise DataError(f"{flag} {spec}: registered dataset '{meta.name}' points to {local}, which does "
                                "not exist; fix its dataset_path")
            return Source(spec, "prepared" if is_prepared(local) else "local", path=local, meta=meta, count=count)
        repo = (meta.ms_id or meta.hf_id) if hub == "modelscope" else (meta.hf_id or meta.ms_id)
        which = "modelscope" if repo == meta.ms_id and (hub == "modelscope" or not meta.hf_id) else "huggingface"
        return Source(spec, "hub", meta=meta, repo_id=repo, hub=which, subsets=subsets or meta.subsets,
                      splits=meta.split, count=count)
    if looks_like_hub_id(name):
        return Source(spec, "hub", repo_id=name, hub=hub, subsets=subsets, count=count,
                      splits=tuple(getattr(args, "dataset_split", None) or ["train"]))
    raise DataError(f"{flag} {spec}: no such file or folder, not a registered dataset name "
                    "(see: swiftall dataset list) and not a hub id like 'org/name'")


def split_placeholder_names(specs: list[str], kind_of: Callable[[str], Optional[str]]) -> tuple[list[str], list[str]]:
    """ms-swift's tutorials write `--train_dataset NAME --custom_train_dataset_path DIR`, where NAME only names the
    custom data. Given each spec's kind ("path" for an existing file/folder, "known" for a registered name or a
    hub-id-shaped value, None for neither), return (specs to read, specs that are names of the local data).
    A spec that names nothing stays to be read (and fails with its own message) unless a local path is given
    beside it: no silent mix-up either way."""
    kinds = [kind_of(spec) for spec in specs]
    if "path" not in kinds:
        return list(specs), []
    keep = [spec for spec, kind in zip(specs, kinds) if kind is not None]
    names = [spec for spec, kind in zip(specs, kinds) if kind is None]
    return keep, names


def spec_kind(spec: str) -> Optional[str]:
    """"path", "known" (registered name or hub id), or None, for split_placeholder_names."""
    try:
        name, _ = split_spec(spec)
    except DataError:
        return "known"  # a malformed '#N' is reported by resolve_source
    if Path(name).expanduser().exists():
        return "path"
    base = name.partition(":")[0]
    return "known" if get_dataset(name) or get_dataset(base) or looks_like_hub_id(base) else None


def resolve_sources(specs: list[str], args: Any, flag: Optional[str] = None) -> list[Source]:
    """Sources of one flag's values; errors name the flag (by default --val_dataset when `specs` is the config's
    own val_dataset list, else --dataset)."""
    if flag is None:
        flag = "--val_dataset" if specs and specs is getattr(args, "val_dataset", None) else "--dataset"
    specs, names = split_placeholder_names(list(specs), spec_kind)
    if names:
        _note_names(names, specs, flag)
    return [resolve_source(spec, args, flag) for spec in specs]


_NOTED: set[tuple[str, ...]] = set()


def _note_names(names: list[str], specs: list[str], flag: str) -> None:
    key = (*names, "|", *specs)
    if key in _NOTED:
        return
    _NOTED.add(key)
    from ..utils.log import get_logger

    listed = ", ".join(repr(n) for n in names)
    get_logger(__name__).info(f"note: {flag} {listed} names no file, folder, registered dataset or hub id; taken as "
                              f"the name of the custom data {', '.join(specs)} (as in ms-swift's "
                              "--train_dataset NAME --custom_train_dataset_path PATH)")


def _pretraining(args: Any) -> bool:
    """swiftall pt (or prepare --task pt) reads .txt corpora too."""
    return getattr(args, "command", None) == "pt" or getattr(args, "task", None) == "pt"
