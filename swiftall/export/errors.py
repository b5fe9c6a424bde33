"""Errors of the export step (the CLI prints them as one message, no traceback)."""
from ..utils.errors import SwiftallError


class ExportError(SwiftallError):
    """A converter or quantizer failed; the message says which and what it printed."""


class ExportCheckError(SwiftallError):
    """The exported model drifted from the original past a threshold; the files are kept."""
