"""Inference engines behind one interface."""
from .engine import Engine, InferRequest, InferResponse, RequestConfig

__all__ = ["Engine", "InferRequest", "InferResponse", "RequestConfig", "PtEngine"]


def __getattr__(name: str):
    if name == "PtEngine":
        from .pt import PtEngine

        return PtEngine
    raise AttributeError(name)
