"""Canonical messages -> token ids and labels, shared by training, inference and serving."""
from .encode import IGNORE, Encoded, Template, TemplateError, TooLongError

__all__ = ["IGNORE", "Encoded", "Template", "TemplateError", "TooLongError"]
