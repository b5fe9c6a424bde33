"""The page: Chat, Train, Runs, Evaluate, Export and Deploy tabs in one Gradio Blocks app. Chat talks to models
through swiftall.infer (the pipeline's engines: one process of its own per model); everything else runs as
`swiftall <command>` processes that outlive it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..utils.optional import require
from .engines import EnginePool
from .i18n import translator
from .runs import RunManager

ENGINE_OPTIONS = ("model", "model_type", "adapters", "hub", "revision", "torch_dtype", "attn_impl", "trust_remote_code",
                  "plugin", "system", "max_length", "max_new_tokens", "temperature", "top_p", "top_k",
                  "repetition_penalty")


@dataclass
class WebApp:
    demo: Any
    pool: EnginePool
    manager: RunManager


def engine_defaults(cfg: Any) -> dict[str, Any]:
    return {name: getattr(cfg, name, None) for name in ENGINE_OPTIONS}


def engine_pool(cfg: Any, engine_factory: Any) -> EnginePool:
    """The chat's engines for a WebuiConfig: `engine_factory` turns `swiftall infer` options into an Engine. The
    pipeline builds the pool before importing Gradio, so the command line's model starts loading first."""
    return EnginePool(engine_defaults(cfg), engine_factory)


def model_names() -> list[str]:
    from ..models.registry import list_models

    return [meta.name for meta in list_models()]


def build_app(cfg: Any, pool: EnginePool, preview: Any, has_eval: bool = False) -> WebApp:
    """The Blocks app for a WebuiConfig. The pipeline hands in what needs the layers below: the chat's engines
    (`engine_pool`), `preview` (`swiftall template show` argv -> its text) and whether `eval` exists."""
    gr = require("gradio", "webui", "the web UI")
    from .tabs.chat import ChatTab
    from .tabs.deploy import deploy_tab
    from .tabs.evaluate import eval_tab
    from .tabs.export import export_tab
    from .tabs.runs import RunsTab
    from .tabs.train import TrainTab

    t = translator(cfg.lang)
    manager = RunManager(cfg.runs_dir)
    defaults = engine_defaults(cfg)
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
    return WebApp(demo, pool, manager)
