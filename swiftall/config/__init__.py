"""Typed configs for every command, composed from sections. Imports no torch."""
from .base import Config, Section, arg
from .commands import DownloadConfig, InferConfig, PtConfig, SftConfig
from .data import PrepareConfig, TemplateShowConfig
from .deploy import DeployConfig
from .eval import EvalConfig
from .export import ExportConfig
from .plan import InitConfig, PlanConfig
from .rlhf import DpoConfig, RlhfConfig
from .webui import WebuiConfig

BaseConfig = Config  # the name earlier code used

__all__ = ["Config", "Section", "BaseConfig", "arg", "SftConfig", "InferConfig", "ExportConfig", "DownloadConfig",
           "EvalConfig", "RlhfConfig", "DpoConfig", "PtConfig", "PrepareConfig", "TemplateShowConfig", "DeployConfig",
           "PlanConfig", "InitConfig"]
