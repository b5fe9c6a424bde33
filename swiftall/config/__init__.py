"""Typed configs for every command. Imports no torch."""
from .base import BaseConfig, arg
from .commands import DownloadConfig, ExportConfig, InferConfig, SftConfig

__all__ = ["BaseConfig", "arg", "SftConfig", "InferConfig", "ExportConfig", "DownloadConfig"]
