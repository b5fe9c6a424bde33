"""Read dataset files into rows that remember where they came from (file and line).

Readers are generators, so a file larger than memory is never held whole. A line that cannot be parsed
(invalid JSON, bytes that are not UTF-8) becomes a row carrying an `error`, so that `--strict false` can skip
and count it while the rows around it are kept. Problems with a whole file (unknown type, a JSON document that
does not parse) raise DataError at once.
"""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ..utils.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
TEXT_SUFFIX = ".txt"   # plain-text corpora, one row per non-empty line: read for pre-training (swiftall pt)
PREPARED_MARKER = "swiftall_prepared.json"   # written by `swiftall prepare`


@dataclass
class Row:
    data: dict[str, Any]
    file: str
    line: int           # 1-based line in JSONL/CSV, 1-based index in JSON/Parquet/HF datasets
    error: Optional[str] = None   # set when the line could not be read at all

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def base_dir(self) -> Path:
        return Path(self.file).parent


def split_spec(spec: str) -> tuple[str, Optional[int]]:
    """'data.jsonl#200' -> ('data.jsonl', 200)."""
    if "#" in spec:
        name, _, count = spec.rpartition("#")
        if count.isdigit() and name:
            return name, int(count)
        raise DataError(f"--dataset {spec}: after '#' give a row count, e.g. {name or 'data.jsonl'}#500")
    return spec, None


def is_hf_disk_dataset(path: Path) -> bool:
    """A folder written by datasets' save_to_disk (a Dataset or a DatasetDict)."""
    return path.is_dir() and ((path / "state.json").is_file() or (path / "dataset_dict.json").is_file())


def is_prepared(path: Path) -> bool:
    return path.is_dir() and (path / PREPARED_MARKER).is_file()


def read_path(path: Path, text_files: bool = False) -> Iterator[Row]:
    """`text_files`: also read .txt files (pre-training corpora) as rows {"text": line}."""
    suffixes = (*SUFFIXES, TEXT_SUFFIX) if text_files else SUFFIXES
    if is_prepared(path):
        yield from read_prepared(path)
    elif is_hf_disk_dataset(path):
        yield from read_hf_disk(path)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        if not files:
            raise DataError(f"{path}: the folder holds no {'/'.join(suffixes)} files; put the data files in it or "
                            "name the files in --dataset")
        for file in files:
            yield from read_file(file, text_files)
    else:
        yield from read_file(path, text_files)


def read_file(path: Path, text_files: bool = False) -> Iterator[Row]:
    """Rows of one data file; a file that cannot be read or holds no rows stops the run, naming the file."""
    count = 0
    try:
        for row in (_read_txt(path) if text_files and path.suffix.lower() == TEXT_SUFFIX else _rows_of(path)):
            count += 1
            yield row
    except OSError as exc:  # permissions, a file removed while reading, an I/O error
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}); check that the file exists and that you "
                        "may read it") from None
    if count == 0:
        raise DataError(f"{path}: the file holds no rows (it is empty, only whitespace, an empty list or a header "
                        "without rows); add rows or leave it out of --dataset")


def _rows_of(path: Path) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        return _read_json(path)
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, "\t" if suffix == ".tsv" else ",")
    if suffix == ".parquet":
        return _read_parquet(path)
    pt = " (.txt corpora are read by swiftall pt, for continued pre-training)" if suffix == TEXT_SUFFIX else ""
    raise DataError(f"{path}: unsupported file type '{suffix or '(none)'}'; use {', '.join(SUFFIXES)}, a folder of "
                    f"them, or a folder written by datasets' save_to_disk{pt}")


def _read_txt(path: Path) -> Iterator[Row]:
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        if line.strip():
            yield Row({"text": line}, str(path), i)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 (at byte {exc.start}); re-save the file as "
                        "UTF-8") from None


def _read_jsonl(path: Path) -> Iterator[Row]:
    with open(path, "rb") as handle:
        for i, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if i == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield Row({}, str(path), i, f"{path}:{i}: bytes that are not UTF-8 (column {exc.start + 1}); "
                          "re-save the file as UTF-8")
                continue
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row({}, str(path), i, f"{path}:{i}: invalid JSON ({exc.msg} at column {exc.colno}); each "
                          "line must be one JSON object")
                continue
            if not isinstance(data, dict):
                yield Row({}, str(path), i, f"{path}:{i}: expected a JSON object per line, got "
                          f"{type(data).__name__}")
                continue
            yield Row(data, str(path), i)


def _read_json(path: Path) -> Iterator[Row]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); fix the file "
                        "(a JSON file holds one list of row objects)") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 and len(data) == 1 else [data]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of rows (or one object), got {type(data).__name__}")
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            yield Row({}, str(path), i, f"{path}:{i}: row {i} must be an object, got {type(item).__name__}")
            continue
        yield Row(item, str(path), i)


def _read_csv(path: Path, delimiter: str) -> Iterator[Row]:
    reader = csv.DictReader(_read_text(path).splitlines(), delimiter=delimiter)
    for data in reader:
        i = reader.line_num  # the physical line this record ended on (quoted values may span lines)
        if None in data:
            yield Row({}, str(path), i, f"{path}:{i}: more fields than the header names; quote values that "
                      f"contain '{delimiter}'")
            continue
        yield Row({k: v for k, v in data.items() if v not in (None, "")}, str(path), i)


def _read_parquet(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow.ArrowInvalid and friends
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    i = 0
    for batch in parquet.iter_batches(batch_size=1000):
        for data in batch.to_pylist():
            i += 1
            yield Row(data, str(path), i)


def iter_dataset(dataset: Iterable[dict], name: str) -> Iterator[Row]:
    """Rows of a Hugging Face (or ModelScope) dataset; 'line' is the 1-based row index."""
    for i, data in enumerate(dataset, 1):
        yield Row(dict(data), name, i)


def read_hf_disk(path: Path) -> Iterator[Row]:
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"{path}: looks like a datasets save_to_disk folder but cannot be loaded ({exc})") from None
    if isinstance(loaded, DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        yield from iter_dataset(loaded[split], f"{path}[{split}]")
    else:
        yield from iter_dataset(loaded, str(path))


def read_prepared(path: Path, split: str = "train") -> Iterator[Row]:
    """Canonical rows written by `swiftall prepare`; each row keeps the file:line it came from."""
    file = path / f"{split}.jsonl"
    if not file.is_file():
        return
    for row in _read_jsonl(file):
        if row.error is None:
            source = str(row.data.pop("source", ""))
            name, _, line = source.rpartition(":")
            if name and line.isdigit():
                row = Row(row.data, name, int(line))
        yield row


def sample(rows: Iterable[Row], count: Optional[int], seed: int, streaming: bool = False) -> list[Row] | Iterator[Row]:
    """'#N': N rows drawn without replacement (cycled when N exceeds the data). Streaming takes the first N."""
    if count is None:
        return rows
    if streaming:
        return islice(rows, count)
    rows = list(rows)
    if not rows:
        return rows
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    return [rows[order[i % len(rows)]] for i in range(count)]
