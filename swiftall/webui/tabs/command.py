"""A tab over one command (Export, Evaluate, Deploy): its flags as a form, Start runs it as a process that outlives
the page, and the tab follows that run's status and console."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ...config.base import Config
from .. import forms
from ..commandform import CommandForm, start_run
from ..runlist import find_run, log_tail
from ..runs import RunManager

# flags of the model section the forms leave to "more flags"
ADVANCED = {"hub", "use_hf", "revision", "attn_impl", "use_flash_attn", "verbose", "plugin", "model_type"}
FOLLOW_S = 2.0


class CommandTab:
    """Form + Start + the started run's status and log. `names` defaults to every flag of the command."""

    def __init__(self, gr: Any, cls: type[Config], manager: RunManager, t: Any,
                 names: Optional[list[str]] = None, values: Optional[dict[str, Any]] = None):
        self.gr, self.cls, self.manager, self.t = gr, cls, manager, t
        self.command = cls.command
        names = names or [n for n in cls._owners if n not in ADVANCED]
        self.form = CommandForm(gr, cls, names, t, values)

    def build(self) -> None:
        gr, t = self.gr, self.t
        self.form.build()
        with gr.Row():
            self.start = gr.Button(t("start"), variant="primary", elem_id=f"{self.command}-start")
            self.as_command = gr.Button(t("as_command"), elem_id=f"{self.command}-as-command")
            self.stop = gr.Button(t("stop"), variant="stop", elem_id=f"{self.command}-stop")
        self.status = gr.Markdown(elem_id=f"{self.command}-status")
        self.extra_output()
        self.log = gr.Code(label=t("log"), language="shell", elem_id=f"{self.command}-log", max_lines=20)
        self.run_id = gr.State(None)
        self.timer = gr.Timer(FOLLOW_S, active=False)  # ticks once this tab has started a run
        private = {"api_visibility": "private"}
        self.start.click(self.on_start, self.form.inputs, [self.status, self.run_id], **private).then(
            lambda run_id: gr.Timer(active=bool(run_id)) if run_id else gr.update(), self.run_id, self.timer, **private)
        self.as_command.click(self.on_command, self.form.inputs, self.status, **private)
        self.stop.click(self.on_stop, self.run_id, self.status, **private)
        self.timer.tick(self.follow, self.run_id, self.follow_outputs(), show_progress="hidden", **private)

    def extra_output(self) -> None:
        """Components a subclass shows between the status and the log."""

    def follow_outputs(self) -> list[Any]:
        return [self.log]

    def arguments(self, values: tuple) -> tuple[list[str], Optional[Path]]:
        args = self.form.args(list(values))
        if "--output_dir" in args:
            return args, Path(args[args.index("--output_dir") + 1]).expanduser().resolve()
        return args, None

    def on_start(self, *values: Any) -> tuple[str, Any]:
        try:
            args, folder = self.arguments(values)
            message = start_run(self.manager, self.command, args, folder)
        except Exception as exc:  # the command's message in the page
            return f"**Error:** {forms.error_text(exc)}", None
        run_id = message.split("**")[1]
        return message, run_id

    def on_command(self, *values: Any) -> str:
        try:
            return f"`{forms.as_command(self.command, self.arguments(values)[0])}`"
        except Exception as exc:
            return f"**Error:** {forms.error_text(exc)}"

    def on_stop(self, run_id: Optional[str]) -> str:
        if not run_id:
            return "nothing started from this tab"
        try:
            return self.manager.stop(run_id).message()
        except Exception as exc:
            return f"**Error:** {forms.error_text(exc)}"

    def follow(self, run_id: Optional[str]) -> Any:
        view = find_run(self.manager, run_id) if run_id else None
        return f"[{view.status}]\n{log_tail(view, 20)}" if view else ""
