"""predictions/<dataset>.jsonl: one line per item, appended (and flushed) as each answer arrives, so a crash
keeps every answer written so far and `--resume` continues from them. At the end the file is rewritten in item
order with the final per-item scores."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..utils.errors import DataError


class PredictionLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = None

    def done(self) -> dict[str, dict[str, Any]]:
        """Records already written (a torn last line from a crash is dropped)."""
        if not self.path.is_file():
            return {}
        records = {}
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the run stopped
            if "id" not in record:
                raise DataError(f"{self.path}:{n}: a prediction without 'id'; this file was not written by "
                                "swiftall eval, start a new run without --resume")
            records[str(record["id"])] = record
        return records

    def append(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        self.close()
        tmp = self.path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        tmp.replace(self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_predictions(path: Path) -> list[dict[str, Any]]:
    return list(PredictionLog(path).done().values())
