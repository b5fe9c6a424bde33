"""The OpenAI-compatible server over an Engine (FastAPI + uvicorn). Imports fastapi only when used."""
from __future__ import annotations

__all__ = ["create_app", "ServeSettings", "ServerThread"]


def __getattr__(name: str):
    if name == "create_app":
        from ..utils.optional import require

        require("fastapi", "serve", "swiftall deploy")
        from .app import create_app

        return create_app
    if name == "ServeSettings":
        from .handlers import ServeSettings

        return ServeSettings
    if name == "ServerThread":
        from .server import ServerThread

        return ServerThread
    raise AttributeError(name)
