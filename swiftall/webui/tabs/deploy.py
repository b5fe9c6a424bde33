"""Deploy tab: start and stop `swiftall deploy` (the OpenAI-compatible server) as a process, with its URL, whether
it answers, and a curl example."""
from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path
from typing import Any, Optional

from ...config import DeployConfig
from ...utils.errors import ConfigError
from ..runlist import find_run, log_tail
from ..runs import RunManager
from .command import CommandTab

NAMES = ["model", "adapters", "host", "port", "served_model_name", "api_key", "max_new_tokens", "infer_backend",
         "max_batch_size", "torch_dtype"]


def server_url(args: list[str]) -> str:
    def flag(name: str, default: str) -> str:
        return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else default

    host = flag("--host", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://{host}:{flag('--port', '8000')}"


def curl_example(url: str, args: list[str], served: Optional[str] = None) -> str:
    """A request that works against the server: `served` is the name its /v1/models lists (once it answers)."""
    name = args[args.index("--served_model_name") + 1] if "--served_model_name" in args else None
    model = served or name or (args[args.index("--model") + 1] if "--model" in args else "default")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    auth = ["-H", "Authorization: Bearer $API_KEY"] if "--api_key" in args else []
    return shlex.join(["curl", f"{url}/v1/chat/completions", "-H", "Content-Type: application/json", *auth,
                       "-d", body])


def served_name(url: str, args: list[str]) -> Optional[str]:
    """The model name the server at `url` lists first on /v1/models, or None while it does not answer."""
    import urllib.request

    request = urllib.request.Request(f"{url}/v1/models")
    if "--api_key" in args:
        request.add_header("Authorization", f"Bearer {args[args.index('--api_key') + 1]}")
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return json.loads(response.read())["data"][0]["id"]
    except (OSError, ValueError, KeyError, IndexError):
        return None


def claim_port(host: str, port: int) -> int:
    """The port the server will listen on: a free one for 0; one in use is refused naming --port, before a process
    starts (the server would only fail in its log)."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"--port {port} on {host}: {exc.strerror}; choose another --port (0: any free one)"
                              ) from None
        return sock.getsockname()[1]


def _set_flag(args: list[str], flag: str, value: str) -> list[str]:
    if flag in args and args.index(flag) + 1 < len(args):
        i = args.index(flag)
        return args[:i + 1] + [value] + args[i + 2:]
    return [*args, flag, value]


class DeployTab(CommandTab):
    def arguments(self, values: tuple) -> tuple[list[str], Optional[Path]]:
        args, folder = super().arguments(values)
        host = args[args.index("--host") + 1] if "--host" in args else "127.0.0.1"
        port = int(args[args.index("--port") + 1]) if "--port" in args else 8000
        return _set_flag(args, "--port", str(claim_port(host, port))), folder

    def extra_output(self) -> None:
        self.url = self.gr.Markdown(elem_id="deploy-url")
        self.curl = self.gr.Code(label="curl", language="shell", elem_id="deploy-curl")

    def follow_outputs(self) -> list[Any]:
        return [self.log, self.url, self.curl]

    def follow(self, run_id: Optional[str]) -> tuple:
        view = find_run(self.manager, run_id) if run_id else None
        if view is None:
            return "", "", ""
        args = view.record.get("args", []) if view.record else []
        url = server_url(args)
        served = served_name(url, args) if view.status == "running" else None
        up = f"answering as model '{served}'" if served else view.status
        return f"[{view.status}]\n{log_tail(view, 20)}", f"**{url}/v1** ({up})", curl_example(url, args, served)


def deploy_tab(gr: Any, manager: RunManager, t: Any, defaults: dict[str, Any]) -> DeployTab:
    values = {k: defaults.get(k) for k in ("model", "adapters") if defaults.get(k)}
    return DeployTab(gr, DeployConfig, manager, t, names=NAMES, values=values)
