"""Named datasets: small ones shipped in the package, well-known hub datasets (catalog.py), and the user's own
from `--custom_dataset_info file.json|yaml` or `--plugin file.py`.

A user registry file may take any of these shapes:
- ms-swift's list: [{"dataset_name": "mine", "dataset_path": "data.jsonl" | "hf_dataset_id": ... |
  "ms_dataset_id": ..., "subsets": [...], "split": [...], "columns": {"q": "query"}}, ...]
- LLaMA-Factory's mapping: {"mine": {"file_name": "data.json", "formatting": "alpaca"|"sharegpt",
  "columns": {"prompt": "instr", "response": "out"}, "hf_hub_url": ..., "ms_hub_url": ...}}
- swiftall's mapping: {"mine": {"path": ..., "hf_id": ..., "ms_id": ..., "columns": {...}, "subsets": [...]}}
Relative paths are resolved against the registry file's folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from ..config.data import TASKS as ROW_TASKS
from ..utils.errors import ConfigError
from ..utils.plugins import load_plugins

# what a registered dataset trains: the tasks rows are checked for, plus mllm (multimodal sft) for listing
TASKS = (*ROW_TASKS, "mllm")


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    description: str = ""
    builtin_file: Optional[str] = None   # a file inside swiftall/data/builtin
    hf_id: Optional[str] = None
    ms_id: Optional[str] = None
    needs_model_name: bool = False       # rows carry {{NAME}}/{{AUTHOR}} placeholders
    path: Optional[str] = None           # a local file or folder (user registries)
    format: str = "messages"             # informational: messages, sharegpt, alpaca, query-response, text, ...
    task: str = "sft"                    # what the data trains: sft, pt, rlhf, kto, grpo, mllm
    subsets: tuple[str, ...] = ()        # hub subsets (configs) read by default; () is the default config
    split: tuple[str, ...] = ("train",)
    columns: dict = field(default_factory=dict)       # renames applied before conversion
    preprocess: Optional[Callable[[dict], dict]] = None  # row -> row, for formats the converters do not know

    @property
    def where(self) -> str:
        if self.builtin_file:
            return "bundled"
        return self.path or self.hf_id or self.ms_id or "-"


DATASETS: dict[str, DatasetMeta] = {}
_LOADED: set[str] = set()


def register_dataset(meta: DatasetMeta) -> DatasetMeta:
    """Add a dataset; registering the same name twice with different settings is refused."""
    if meta.task not in TASKS:
        raise ConfigError(f"dataset '{meta.name}': task must be one of {', '.join(TASKS)}, got {meta.task!r}")
    old = DATASETS.get(meta.name)
    if old is not None and old != meta:
        raise ConfigError(f"dataset '{meta.name}' is already registered ({old.where}); pick another name")
    DATASETS[meta.name] = meta
    return meta


def get_dataset(name: str) -> Optional[DatasetMeta]:
    _ensure_catalog()
    if name in DATASETS:
        return DATASETS[name]
    for meta in DATASETS.values():  # a registered hub id also finds its entry (and its columns)
        if name in (meta.hf_id, meta.ms_id):
            return meta
    return None


def list_datasets() -> list[DatasetMeta]:
    _ensure_catalog()
    return sorted(DATASETS.values(), key=lambda m: m.name)


def builtin_path(meta: DatasetMeta) -> Path:
    return Path(__file__).parent / "builtin" / meta.builtin_file


def _ensure_catalog() -> None:
    from . import catalog  # noqa: F401  (registers the built-in entries on first import)


# ---- user registries ---------------------------------------------------------------------------------
def load_dataset_info(path: str | Path) -> list[DatasetMeta]:
    """Register the datasets described in a dataset_info.json / .yaml file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"--custom_dataset_info {path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise ConfigError(f"--custom_dataset_info {path}: cannot parse: {exc}") from None
    if isinstance(data, dict):
        entries = [(name, spec) for name, spec in data.items()]
    elif isinstance(data, list):
        entries = [(None, spec) for spec in data]
    else:
        raise ConfigError(f"--custom_dataset_info {path}: expected a list or a mapping of datasets")
    _ensure_catalog()
    return [register_dataset(_entry(path, i, name, spec)) for i, (name, spec) in enumerate(entries, 1)]


LF_ALPACA = {"prompt": "instruction", "query": "input", "response": "output", "history": "history",
             "system": "system", "chosen": "chosen", "rejected": "rejected", "kto_tag": "label", "images": "images",
             "videos": "videos", "audios": "audios"}
LF_SHAREGPT = {"messages": "conversations", "system": "system", "tools": "tools", "chosen": "chosen",
               "rejected": "rejected", "kto_tag": "label", "images": "images", "videos": "videos", "audios": "audios"}


def _entry(file: Path, index: int, name: Optional[str], spec: Any) -> DatasetMeta:
    where = f"--custom_dataset_info {file}: entry {name or index}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected an object, got {type(spec).__name__}")
    local = spec.get("dataset_path") or spec.get("path") or spec.get("file_name")
    hf_id = spec.get("hf_dataset_id") or spec.get("hf_id") or spec.get("hf_hub_url")
    ms_id = spec.get("ms_dataset_id") or spec.get("ms_id") or spec.get("ms_hub_url")
    if not (local or hf_id or ms_id):
        raise ConfigError(f"{where}: give dataset_path (or file_name/path), hf_dataset_id or ms_dataset_id")
    if local and not Path(local).expanduser().is_absolute():
        local = str(file.parent / local)
    columns = dict(spec.get("columns") or {})
    if "formatting" in spec or "file_name" in spec:  # LLaMA-Factory maps role -> column; invert it
        table = LF_SHAREGPT if spec.get("formatting") == "sharegpt" else LF_ALPACA
        columns = {column: table.get(role, role) for role, column in columns.items()}
    name = name or spec.get("dataset_name") or hf_id or ms_id or local
    subsets = spec.get("subsets") or ()
    split = spec.get("split") or ("train",)
    return DatasetMeta(name=str(name), description=str(spec.get("description", f"from {file.name}")), path=local,
                       hf_id=hf_id, ms_id=ms_id, format=str(spec.get("formatting", spec.get("format", "auto"))),
                       task=spec.get("task", "sft"), columns=columns,
                       subsets=tuple([subsets] if isinstance(subsets, str) else subsets),
                       split=tuple([split] if isinstance(split, str) else split))


def load_extensions(args: Any) -> None:
    """Plugins and user registries named in the config (each loaded once per process)."""
    load_plugins(getattr(args, "plugin", None))
    for info in getattr(args, "custom_dataset_info", None) or []:
        key = f"info:{Path(info).expanduser().resolve()}"
        if key not in _LOADED:
            load_dataset_info(info)
            _LOADED.add(key)
