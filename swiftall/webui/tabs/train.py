"""Train tab: SFT and every rlhf method as a form of their flags (each labelled --flag), datasets by name, path or
upload, a preview of encoded rows with the trained tokens marked, copy as command line / YAML, load a YAML, and
Start: a real `swiftall sft` / `swiftall rlhf` process that outlives the page."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from ...config import RlhfConfig, SftConfig
from ...config.rlhf import RLHF_TYPES
from .. import forms
from ..commandform import CommandForm, place_output_dir, start_run
from ..runs import RunManager

MAIN = ["model", "dataset", "train_type", "lora_rank", "lora_alpha", "learning_rate", "num_train_epochs", "max_steps",
        "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "save_steps", "logging_steps",
        "system", "model_name", "model_author", "output_dir"]
RLHF = ["rlhf_type", "beta", "reward_funcs", "num_generations", "reward_model", "teacher_model"]
METHODS = ["sft", *RLHF_TYPES]


class TrainTab:
    def __init__(self, gr: Any, manager: RunManager, t: Any, defaults: dict[str, Any], preview: Any):
        self.gr, self.manager, self.t, self.defaults = gr, manager, t, defaults
        self.show_rows = preview  # `swiftall template show` argv -> the text it prints

    def build(self) -> None:
        gr, t = self.gr, self.t
        self.method = gr.Dropdown(METHODS, value="sft", label=f"{t('command')} (sft / rlhf --rlhf_type)",
                                  elem_id="train-method")
        self.form = CommandForm(gr, SftConfig, MAIN, t, {"model": self.defaults.get("model")})
        self.form.build()
        self.rlhf = CommandForm(gr, RlhfConfig, RLHF[1:], t)
        with gr.Group(visible=False) as self.rlhf_group:
            self.rlhf.build()
        self.uploads = gr.File(label=t("upload_dataset"), file_count="multiple", file_types=[
            ".jsonl", ".json", ".csv", ".tsv", ".parquet"], elem_id="train-upload")
        with gr.Row():
            self.start = gr.Button(t("start"), variant="primary", elem_id="train-start")
            self.preview = gr.Button(t("preview"), elem_id="train-preview")
            self.command = gr.Button(t("as_command"), elem_id="train-command")
            self.yaml = gr.Button(t("as_yaml"), elem_id="train-yaml")
        self.yaml_file = gr.File(label=t("load_yaml"), file_types=[".yaml", ".yml", ".json"], elem_id="train-load-yaml")
        self.status = gr.Markdown(elem_id="train-status")
        self.output = gr.Code(label=t("output"), language="shell", elem_id="train-output")
        self._wire()

    def _wire(self) -> None:
        inputs = [self.method, self.uploads, *self.form.inputs, *self.rlhf.inputs]
        private = {"api_visibility": "private"}
        self.method.change(lambda m: self.gr.update(visible=m != "sft"), self.method, self.rlhf_group, **private)
        self.start.click(self.on_start, inputs, [self.status, self.output], **private)
        self.preview.click(self.on_preview, inputs, [self.status, self.output], **private)
        self.command.click(self.on_command, inputs, [self.status, self.output], **private)
        self.yaml.click(self.on_yaml, inputs, [self.status, self.output], **private)
        self.yaml_file.upload(self.on_load_yaml, [self.yaml_file],
                              [self.status, self.method, *self.form.inputs, *self.rlhf.inputs], **private)

    # ---- the argument list ------------------------------------------------------------------------
    def command_args(self, method: str, uploads: Any, *values: Any) -> tuple[str, list[str]]:
        """('sft' or 'rlhf', argument list) of the form; raises ConfigError with the command's message."""
        main, rlhf = list(values[:len(self.form.inputs)]), list(values[len(self.form.inputs):])
        files = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (uploads or [])]
        if files:  # uploaded files join --dataset (they stay in the page's temp folder)
            index = self.form.names.index("dataset")
            main[index] = " ".join([main[index] or "", *(shlex.quote(f) for f in files)]).strip()
        if method == "sft":
            return "sft", self.form.args(main)
        head = ["--rlhf_type", method] + forms.to_args(self.rlhf.flag_values(rlhf), rlhf[-1] or "")
        form = CommandForm(self.gr, RlhfConfig, self.form.names, self.t)
        return "rlhf", form.args(main, head=head)

    def _guard(self, action: Any, *args: Any) -> tuple[str, str]:
        try:
            return action(*args)
        except Exception as exc:  # a clear message in the page, never a traceback
            return f"**Error:** {forms.error_text(exc)}", ""

    # ---- actions ------------------------------------------------------------------------------------
    def on_start(self, *values: Any) -> tuple[str, str]:
        def start(*values: Any) -> tuple[str, str]:
            command, args = self.command_args(*values)
            stem = Path(str(values[2] or "model")).name.replace(".gguf", "") or "model"
            args, folder = place_output_dir(args, self.manager.root, f"{stem}-{values[0]}")
            return start_run(self.manager, command, args, folder), forms.as_command(command, args)
        return self._guard(start, *values)

    def on_command(self, *values: Any) -> tuple[str, str]:
        return self._guard(lambda *v: ("", forms.as_command(*self.command_args(*v))), *values)

    def on_yaml(self, *values: Any) -> tuple[str, str]:
        def as_yaml(*v: Any) -> tuple[str, str]:
            command, args = self.command_args(*v)
            return "", forms.as_yaml(SftConfig if command == "sft" else RlhfConfig, args)
        return self._guard(as_yaml, *values)

    def on_preview(self, *values: Any) -> tuple[str, str]:
        return self._guard(self._preview, *values)

    def _preview(self, *values: Any) -> tuple[str, str]:
        command, args = self.command_args(*values)
        flags = forms.check_args(SftConfig if command == "sft" else RlhfConfig, args)
        argv = ["show", "--model", flags.model, "--dataset", *flags.dataset, "--rows", "3", "--color", "false"]
        argv += ["--system", flags.system] if flags.system else []
        argv += ["--task", "rlhf"] if command == "rlhf" else []
        return "trained tokens are marked [[like this]]", self.show_rows(argv)

    def on_load_yaml(self, file: Any) -> tuple:
        gr = self.gr
        keep = [gr.update() for _ in (self.method, *self.form.inputs, *self.rlhf.inputs)]
        if not file:
            return ("", *keep)
        path = Path(file if isinstance(file, str) else file.name)
        try:
            loaded = forms.load_yaml(RlhfConfig if "rlhf_type" in path.read_text() else SftConfig,
                                     path.read_text(encoding="utf-8"), source=path.name)
        except Exception as exc:
            return (f"**Error:** {forms.error_text(exc)}", *keep)
        return (f"loaded {len(loaded)} flags from {path.name}", *self._fill(loaded))

    def _fill(self, loaded: dict[str, Any]) -> list[Any]:
        gr, extra = self.gr, []
        method = loaded.pop("rlhf_type", None)
        updates = [gr.update(value=method) if method else gr.update()]
        for form in (self.form, self.rlhf):
            for name in form.names:
                updates.append(gr.update(value=forms.form_value(form.cls, name, loaded.pop(name)))
                               if name in loaded else gr.update())
            updates.append(gr.update())
        for name, value in loaded.items():  # flags without a field go to "more flags"
            extra += forms.to_args({name: value})
        if extra:
            updates[1 + len(self.form.names)] = gr.update(value=shlex.join(extra))
        return updates
