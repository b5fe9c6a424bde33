"""Errors users see. Each carries a message that says what is wrong and what to do."""


class SwiftallError(Exception):
    """Base class: the CLI prints these as one clean message instead of a traceback."""


class ConfigError(SwiftallError, ValueError):
    """A flag, a config file or an argument combination is wrong."""


class DataError(SwiftallError, ValueError):
    """A dataset file or row is wrong; the message names file, line and field."""


class ModelNotFoundError(SwiftallError, FileNotFoundError):
    """A model could not be resolved to a local folder."""


class MissingDependencyError(SwiftallError, ImportError):
    """An optional dependency is not installed; the message names the extra."""
