"""Runs tab: every run in the chosen folder (started here or from the command line), read from the run folders on
each refresh, so closing or reloading the page loses nothing; status, live log tail, loss and learning-rate
plots, stop (SIGINT, SIGTERM, SIGKILL of the whole process group, with the memory freed) and resume."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..forms import error_text
from ..runlist import COLUMNS, find_run, list_runs, log_tail, metric_frame
from ..runs import RunManager

REFRESH_S = 2.0


class RunsTab:
    def __init__(self, gr: Any, manager: RunManager, t: Any):
        self.gr, self.t = gr, t
        self.managers = {str(manager.root): manager}
        self.default = manager

    def manager(self, folder: str) -> RunManager:
        folder = str(Path(folder or self.default.root).expanduser().resolve())
        if folder not in self.managers:
            self.managers[folder] = RunManager(folder)
        return self.managers[folder]

    def build(self) -> None:
        gr, t = self.gr, self.t
        with gr.Row():
            self.folder = gr.Textbox(value=str(self.default.root), label=f"{t('runs_table')} (--runs_dir)", scale=4,
                                     elem_id="runs-folder")
            self.refresh = gr.Button(t("refresh"), scale=1, elem_id="runs-refresh")
        self.table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="runs-table", wrap=True)
        with gr.Row():
            self.run = gr.Dropdown(choices=[], label=t("run_id"), allow_custom_value=True, scale=3, elem_id="runs-run")
            self.stop = gr.Button(t("stop"), variant="stop", scale=1, elem_id="runs-stop")
            self.resume = gr.Button(t("resume"), scale=1, elem_id="runs-resume")
        self.status = gr.Markdown(elem_id="runs-status")
        with gr.Row():
            self.loss = gr.LinePlot(x="step", y="value", color="metric", title="loss", elem_id="runs-loss")
            self.lr = gr.LinePlot(x="step", y="value", title="learning rate", elem_id="runs-lr")
        self.log = gr.Code(label=t("log"), language="shell", elem_id="runs-log", max_lines=30)
        self.timer = gr.Timer(REFRESH_S)
        self._wire()

    def _wire(self) -> None:
        private = {"api_visibility": "private"}
        outputs = [self.table, self.run, self.loss, self.lr, self.log]
        for trigger in (self.refresh.click, self.timer.tick, self.folder.submit, self.run.change):
            trigger(self.show, [self.folder, self.run], outputs, show_progress="hidden", **private)
        self.stop.click(self.on_stop, [self.folder, self.run], self.status, **private)
        self.resume.click(self.on_resume, [self.folder, self.run], self.status, **private)

    def attach(self, demo: Any) -> None:
        """Fill the tab when a page opens (a reopened page shows the runs that went on without it)."""
        demo.load(self.show, [self.folder, self.run], [self.table, self.run, self.loss, self.lr, self.log],
                  api_visibility="private")

    def show(self, folder: str, run_id: str) -> tuple:
        gr = self.gr
        try:
            views = list_runs(self.manager(folder))
        except Exception as exc:  # an unreadable folder: say so in the table's place
            return ([[f"cannot read {folder}: {error_text(exc)}"] + [""] * (len(COLUMNS) - 1)], gr.update(),
                    gr.update(), gr.update(), "")
        ids = [v.id for v in views]
        if run_id not in ids:
            run_id = ids[0] if ids else None
        view = next((v for v in views if v.id == run_id), None)
        frame = metric_frame(view) if view else None
        loss = frame[frame.metric != "learning_rate"] if frame is not None else None
        lr = frame[frame.metric == "learning_rate"] if frame is not None else None
        rows = [v.row() for v in views] or [[""] * len(COLUMNS)]
        return (rows, gr.update(choices=ids, value=run_id), loss, lr, log_tail(view) if view else "")

    def on_stop(self, folder: str, run_id: str) -> str:
        if not run_id:
            return "choose a run first"
        try:
            return f"{run_id}: {self.manager(folder).stop(run_id).message()}"
        except Exception as exc:
            return f"**Error:** {error_text(exc)}"

    def on_resume(self, folder: str, run_id: str) -> str:
        manager = self.manager(folder)
        try:
            if find_run(manager, run_id) is None:
                return f"**Error:** no run '{run_id}' in {manager.root}"
            record = manager.resume(run_id)
        except Exception as exc:
            return f"**Error:** {error_text(exc)}"
        return f"resumed **{run_id}** from {record['resumed_from']} (process group {record['pid']})"
