"""Load hub datasets through the real clients: `datasets.load_dataset` (Hugging Face) and
`modelscope.MsDataset.load`. Offline, a dataset that is not cached fails with a message naming the id, the
cache and what to do."""
from __future__ import annotations

from typing import Any, Iterator, Optional

from ..utils import env
from ..utils.errors import DataError
from ..utils.optional import require
from .read import Row, iter_dataset


def load_hub_rows(repo_id: str, hub: str, subsets: tuple[str, ...] | list[str], splits: tuple[str, ...] | list[str],
                  streaming: bool = False, revision: Optional[str] = None, label: str = "") -> Iterator[Row]:
    """Rows of every (subset, split) of a hub dataset, named 'id:subset[split]:row'."""
    for subset in (list(subsets) or [None]):
        for split in splits:
            name = f"{repo_id}{':' + subset if subset else ''}[{split}]"
            dataset = _load(repo_id, hub, subset, split, streaming, revision, label or repo_id)
            yield from iter_dataset(dataset, name)


def _load(repo_id: str, hub: str, subset: Optional[str], split: str, streaming: bool, revision: Optional[str],
          label: str) -> Any:
    if hub == "modelscope":
        return _modelscope(repo_id, subset, split, streaming, label)
    return _huggingface(repo_id, subset, split, streaming, revision, label)


def _huggingface(repo_id: str, subset: Optional[str], split: str, streaming: bool, revision: Optional[str],
                 label: str) -> Any:
    import datasets

    offline = env.hf_offline()
    if offline and streaming:
        raise DataError(f"--dataset {label}: streaming Hugging Face dataset '{repo_id}' needs the network but offline "
                        "mode is on (HF_HUB_OFFLINE); drop --streaming to read the cached copy, or go online")
    try:
        return datasets.load_dataset(repo_id, subset if subset not in (None, "default") else None, split=split,
                                     streaming=streaming, revision=revision)
    except Exception as exc:  # ConnectionError, DatasetNotFoundError, FileNotFoundError, ValueError (bad split)
        text = f"{type(exc).__name__}: {str(exc)[:300]}"
        if "split" in str(exc).lower() and "unknown" in str(exc).lower() or "config name is missing" in str(exc):
            raise DataError(f"--dataset {label}: Hugging Face dataset '{repo_id}' has no subset {subset!r} / split "
                            f"{split!r} ({text}); pick one with --dataset '{repo_id}:SUBSET'") from None
        how = ("offline mode is on (HF_HUB_OFFLINE) and it is not in the datasets cache" if offline else
               "the Hugging Face Hub could not provide it")
        raise DataError(f"--dataset {label}: cannot load Hugging Face dataset '{repo_id}': {how} ({text}). On a "
                        f"connected machine run 'swiftall prepare --dataset {label} --output_dir DIR' and pass DIR, "
                        "or download the files and pass their path") from None


def _modelscope(repo_id: str, subset: Optional[str], split: str, streaming: bool, label: str) -> Any:
    if env.hf_offline():
        raise DataError(f"--dataset {label}: ModelScope dataset '{repo_id}' needs the network but offline mode is on "
                        "(HF_HUB_OFFLINE/SWIFTALL_OFFLINE); prepare it on a connected machine with 'swiftall prepare "
                        f"--dataset {label} --use_hf false --output_dir DIR' and pass DIR")
    require("modelscope", "modelscope", "ModelScope datasets")
    from modelscope.msdatasets import MsDataset

    kwargs = {"subset_name": subset} if subset and subset != "default" else {}
    try:
        loaded = MsDataset.load(repo_id, split=split, use_streaming=streaming, **kwargs)
    except Exception as exc:
        raise DataError(f"--dataset {label}: cannot load ModelScope dataset '{repo_id}' (subset {subset or 'default'}, "
                        f"split {split}): {type(exc).__name__}: {str(exc)[:300]}. Check the id and your network, or "
                        "pass a local file") from None
    return loaded.to_hf_dataset() if hasattr(loaded, "to_hf_dataset") and not streaming else loaded
