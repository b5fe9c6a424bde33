"""The page: Chat, Train, Runs, Evaluate, Export and Deploy tabs in one Gradio Blocks app. Chat talks to models
through swiftall.infer in this process; everything else runs as `swiftall <command>` processes that outlive it."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..utils.optional import require
from .engines import EnginePool
from .i18n import translator
from .runs import RunManager

ENGINE_OPTIONS = ("model", "model_type", "adapters", "hub", "revision", "torch_dtype", "attn_impl", "trust_remote_code",
                  "plugin", "system", "max_length", "max_new_tokens", "temperature", "top_p", "top_k",
                  "repetition_penalty")


PRELOAD_GRACE_S = 20.0  # with no page opened by then, the command line's model is loaded anyway


@dataclass
class WebApp:
    demo: Any
    pool: EnginePool
    manager: RunManager
    page_opened: threading.Event = field(default_factory=threading.Event)

    def after_first_page(self, work: Callable[[], Any], grace_s: float = PRELOAD_GRACE_S) -> threading.Thread:
        """Run `work` in a thread once a browser has rendered the page (or after grace_s without one). Loading a
        model imports torch and holds the interpreter for seconds; done while the page loads, it starved the
        server of the page's scripts and doubled the time to a usable page. A chat message sent first loads the
        model itself."""
        def wait_then_work() -> None:
            self.page_opened.wait(grace_s)
            work()

        thread = threading.Thread(target=wait_then_work, daemon=True, name="swiftall-preload")
        thread.start()
        return thread


def model_names() -> list[str]:
    from ..models.registry import list_models

    return [meta.name for meta in list_models()]


def build_app(cfg: Any, engine_factory: Any, preview: Any, has_eval: bool = False) -> WebApp:
    """The Blocks app for a WebuiConfig. The pipeline hands in what needs the layers below: `engine_factory`
    (infer options -> Engine), `preview` (`swiftall template show` argv -> its text) and whether `eval` exists."""
    gr = require("gradio", "webui", "the web UI")
    from .tabs.chat import ChatTab
    from .tabs.deploy import deploy_tab
    from .tabs.evaluate import eval_tab
    from .tabs.export import export_tab
    from .tabs.runs import RunsTab
    from .tabs.train import TrainTab

    t = translator(cfg.lang)
    manager = RunManager(cfg.runs_dir)
    defaults = {name: getattr(cfg, name, None) for name in ENGINE_OPTIONS}
    pool = EnginePool(defaults, engine_factory)
    with gr.Blocks(title=t("title"), analytics_enabled=False) as demo:
        gr.Markdown(f"## swiftall · {manager.root}")
        with gr.Tabs():
            with gr.Tab(t("tab_chat"), id="chat", elem_id="tab-chat"):
                ChatTab(gr, pool, t, model_names(), defaults).build()
            with gr.Tab(t("tab_train"), id="train", elem_id="tab-train"):
                TrainTab(gr, manager, t, defaults, preview).build()
            with gr.Tab(t("tab_runs"), id="runs", elem_id="tab-runs"):
                runs = RunsTab(gr, manager, t)
                runs.build()
            with gr.Tab(t("tab_eval"), id="eval", elem_id="tab-eval"):
                evaluate = eval_tab(gr, manager, t, defaults, has_eval)
                if evaluate is not None:
                    evaluate.build()
            with gr.Tab(t("tab_export"), id="export", elem_id="tab-export"):
                export_tab(gr, manager, t, defaults).build()
            with gr.Tab(t("tab_deploy"), id="deploy", elem_id="tab-deploy"):
                deploy_tab(gr, manager, t, defaults).build()
        runs.attach(demo)
        page_opened = threading.Event()
        demo.load(page_opened.set, None, None, api_visibility="private", show_progress="hidden")
    return WebApp(demo, pool, manager, page_opened)
