"""Deploy tab: start and stop `swiftall deploy` (the OpenAI-compatible server) as a process, with its URL, whether
it answers, and a curl example."""
from __future__ import annotations

import json
import shlex
from typing import Any, Optional

from ...config import DeployConfig
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


def curl_example(url: str, args: list[str]) -> str:
    name = args[args.index("--served_model_name") + 1] if "--served_model_name" in args else None
    model = name or (args[args.index("--model") + 1] if "--model" in args else "default")
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Hello!"}]})
    auth = ["-H", "Authorization: Bearer $API_KEY"] if "--api_key" in args else []
    return shlex.join(["curl", f"{url}/v1/chat/completions", "-H", "Content-Type: application/json", *auth,
                       "-d", body])


def answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class DeployTab(CommandTab):
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
        up = "answering" if view.status == "running" and answers(url) else view.status
        return f"[{view.status}]\n{log_tail(view, 20)}", f"**{url}/v1** ({up})", curl_example(url, args)


def deploy_tab(gr: Any, manager: RunManager, t: Any, defaults: dict[str, Any]) -> DeployTab:
    values = {k: defaults.get(k) for k in ("model", "adapters") if defaults.get(k)}
    return DeployTab(gr, DeployConfig, manager, t, names=NAMES, values=values)
