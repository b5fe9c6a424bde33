"""Typed configs for every command. Imports no torch."""
from .base import BaseConfig, arg
from .commands import DownloadConfig, ExportConfig, InferConfig, SftConfig
from .deploy import DeployConfig
from .data import PrepareConfig, TemplateShowConfig
from .rlhf import DpoConfig, RlhfConfig

__all__ = ["BaseConfig", "arg", "SftConfig", "InferConfig", "ExportConfig", "DownloadConfig", "RlhfConfig", "DpoConfig", "PrepareConfig", "TemplateShowConfig", "DeployConfig"]
