"""swiftall: fine-tune, align, infer, evaluate, export and serve language and multimodal models.

The public API is loaded on first use, so `import swiftall` stays light (no torch).
"""
from __future__ import annotations

__version__ = "0.1.0"

_API = {
    "sft_main": "swiftall.pipelines.sft",
    "infer_main": "swiftall.pipelines.infer",
    "rlhf_main": "swiftall.pipelines.rlhf",
    "dpo_main": "swiftall.pipelines.rlhf",
    "RlhfConfig": "swiftall.config",
    "export_main": "swiftall.pipelines.export",
    "download_main": "swiftall.pipelines.download",
    "deploy_main": "swiftall.pipelines.deploy",
    "InferEngine": "swiftall.pipelines.infer",
    "SwiftInfer": "swiftall.pipelines.infer",
    "PtEngine": "swiftall.infer.pt",
    "RequestConfig": "swiftall.infer.engine",
    "InferRequest": "swiftall.infer.engine",
    "HttpEngine": "swiftall.infer.client",
    "DeployConfig": "swiftall.config",
    "SftConfig": "swiftall.config",
    "InferConfig": "swiftall.config",
    "ExportConfig": "swiftall.config",
}

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        import importlib

        from .utils.env import verbose
        from .utils.quiet import quiet_libraries

        quiet_libraries(verbose(), only_libraries=True)  # library notes the user cannot act on; SWIFTALL_VERBOSE=1
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'swiftall' has no attribute {name!r}")
