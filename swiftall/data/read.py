"""Read dataset files into rows that remember where they came from (file and line)."""
from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ..utils.errors import DataError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


@dataclass
class Row:
    data: dict[str, Any]
    file: str
    line: int           # 1-based line in JSONL/CSV, 1-based index in JSON/Parquet

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


def read_path(path: Path) -> Iterator[Row]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{path}: folder holds no {'/'.join(SUFFIXES)} files")
        for file in files:
            yield from read_file(file)
    else:
        yield from read_file(path)


def read_file(path: Path) -> Iterator[Row]:
    name = str(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif suffix == ".json":
        yield from _read_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from _read_csv(path, "\t" if suffix == ".tsv" else ",")
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, data in enumerate(pq.read_table(path).to_pylist(), 1):
            yield Row(data, name, i)
    else:
        raise DataError(f"{name}: unsupported file type '{suffix}'; use {', '.join(SUFFIXES)}")


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 (at byte {exc.start}); re-save the file as UTF-8") from None


def _read_jsonl(path: Path) -> Iterator[Row]:
    for i, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{i}: invalid JSON ({exc.msg} at column {exc.colno}); each line must be one "
                            "JSON object") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}:{i}: expected a JSON object per line, got {type(data).__name__}")
        yield Row(data, str(path), i)


def _read_json(path: Path) -> Iterator[Row]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 and len(data) == 1 else [data]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of rows (or one object), got {type(data).__name__}")
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise DataError(f"{path}: row {i}: expected an object, got {type(item).__name__}")
        yield Row(item, str(path), i)


def _read_csv(path: Path, delimiter: str) -> Iterator[Row]:
    reader = csv.DictReader(_read_text(path).splitlines(), delimiter=delimiter)
    for i, data in enumerate(reader, 2):  # line 1 is the header
        if None in data:
            raise DataError(f"{path}:{i}: more fields than the header names; quote values that contain "
                            f"'{delimiter}'")
        yield Row({k: v for k, v in data.items() if v not in (None, "")}, str(path), i)


def sample(rows: list[Row], count: Optional[int], seed: int) -> list[Row]:
    """'#N': N rows drawn without replacement (cycled when N exceeds the data)."""
    if count is None:
        return rows
    if not rows:
        return rows
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    picked = [rows[order[i % len(rows)]] for i in range(count)]
    return picked
