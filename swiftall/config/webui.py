"""`swiftall webui`: the Gradio app, composed from the model/adapter/generation sections and its own server options."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..utils.errors import ConfigError
from .base import Config, Section, arg
from .commands import MODEL
from .inference import BindSection, GenerationSection, SamplingSection
from .sections import AdapterSection, TemplateSection

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class WebuiSection(Section):
    name = "webui"
    title = "web UI"
    lang: str = arg("en", "Language of the page's labels", choices=("en", "zh"))
    auth: Optional[str] = arg(None, "user:password required by the page and its API")
    auth_file: Optional[str] = arg(None, "File of user:password lines (one account a line; # starts a comment)")
    share: bool = arg(False, "Ask Gradio for a public share link (sends traffic through Gradio's servers)")
    runs_dir: str = arg("output", "Folder where runs started from the page are written and where the Runs tab "
                        "finds runs (also those started from the command line)")

    def check(self) -> None:
        if self.auth is not None and (":" not in self.auth or not self.auth.split(":", 1)[0]
                                      or not self.auth.split(":", 1)[1]):
            raise ConfigError("--auth: expected user:password (both non-empty)")
        if self.auth_file is not None and not Path(self.auth_file).expanduser().is_file():
            raise ConfigError(f"--auth_file {self.auth_file}: no such file")

    def credentials(self) -> list[tuple[str, str]]:
        """(user, password) pairs from --auth and --auth_file; empty when the page is open."""
        pairs = []
        if self.auth:
            user, password = self.auth.split(":", 1)
            pairs.append((user, password))
        if self.auth_file:
            path = Path(self.auth_file).expanduser()
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, password = line.partition(":")
                if not sep or not user or not password:
                    raise ConfigError(f"--auth_file {path}:{number}: expected user:password")
                pairs.append((user, password))
            if not pairs:
                raise ConfigError(f"--auth_file {path}: holds no user:password line")
        return pairs


class WebuiConfig(Config):
    """A web page to chat with models, start and watch training runs, export and deploy."""

    command = "webui"
    sections = (*MODEL, AdapterSection, TemplateSection, GenerationSection, SamplingSection, BindSection, WebuiSection)
    defaults = {"max_length": None, "port": 7860}  # a chat may use the model's whole context

    def open_to_network(self) -> bool:
        return self.host not in LOOPBACK
