"""Upload an export folder to the Hugging Face Hub (ModelScope ids with --hub modelscope are left to its CLI)."""
from __future__ import annotations

from pathlib import Path

from ..utils.env import hf_offline
from ..utils.errors import SwiftallError
from ..utils.log import get_logger

logger = get_logger(__name__)


def push_folder(folder: Path, repo_id: str, private: bool = True) -> str:
    """Create the repo if needed and upload the folder; offline or failing: a clear message, the export kept."""
    if hf_offline():
        raise SwiftallError(f"--push_to_hub: the Hugging Face Hub is offline here (HF_HUB_OFFLINE=1); the export is "
                            f"kept in {folder}. Upload it later with: hf upload {repo_id} {folder}")
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    except Exception as exc:  # network, auth, permissions: all end the same way for the user
        raise SwiftallError(f"--push_to_hub {repo_id} failed ({exc}); the export is kept in {folder}. Log in with "
                            f"'hf auth login' and retry with: hf upload {repo_id} {folder}") from exc
    logger.info(f"uploaded {folder} to https://huggingface.co/{repo_id}")
    return repo_id
