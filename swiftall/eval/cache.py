"""The evaluation cache: a benchmark split read once from its hub is kept as items (JSONL, media as files) under
~/.cache/swiftall/eval, and later runs read it from there without asking the hub again."""
from __future__ import annotations

import hashlib
import io
import json
import wave
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from ..utils import env
from .items import EvalItem


def cache_dir(benchmark: str, repo_id: str, subset: str, split: str, revision: Optional[str] = None) -> Path:
    key = "__".join(x.replace("/", "--") for x in (repo_id, subset or "default", split, revision or "main"))
    return env.cache_root() / "eval" / benchmark / key


def _media_file(folder: Path, item_id: str, kind: str, j: int, value: Any) -> Any:
    """A decoded image (PIL) or audio ({array, sampling_rate}) -> a file in the cache; paths stay as they are."""
    if isinstance(value, str):
        return value
    stem = hashlib.sha1(f"{item_id}:{kind}:{j}".encode()).hexdigest()[:16]
    if hasattr(value, "save"):  # a PIL image
        path = folder / "media" / f"{stem}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        value.convert("RGB").save(path)
        return str(path)
    if isinstance(value, dict) and value.get("bytes"):
        path = folder / "media" / f"{stem}{Path(value.get('path') or '.bin').suffix or '.bin'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value["bytes"])
        return str(path)
    if isinstance(value, dict) and "array" in value:
        import numpy as np

        path = folder / "media" / f"{stem}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = (np.clip(np.asarray(value["array"], dtype=np.float32), -1, 1) * 32767).astype("<i2")
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(int(value.get("sampling_rate", 16000)))
            out.writeframes(samples.tobytes())
        path.write_bytes(buffer.getvalue())
        return str(path)
    return value


def save_items(folder: Path, items: list[EvalItem], source: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "items.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        for item in items:
            media = {k: [_media_file(folder, item.id, k, j, v) for j, v in enumerate(vals)]
                     for k, vals in item.media.items()}
            f.write(json.dumps({**asdict(item), "media": media}, ensure_ascii=False, default=str) + "\n")
    (folder / "source.json").write_text(json.dumps(source, indent=1))
    tmp.replace(folder / "items.jsonl")


def load_items(folder: Path) -> Optional[tuple[list[EvalItem], dict[str, Any]]]:
    file = folder / "items.jsonl"
    if not file.is_file():
        return None
    items = [EvalItem(**json.loads(line)) for line in file.read_text(encoding="utf-8").splitlines() if line]
    source = json.loads((folder / "source.json").read_text()) if (folder / "source.json").is_file() else {}
    return items, source
