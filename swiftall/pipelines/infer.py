"""swiftall infer: terminal chat, one --query, or batch answers over a dataset written to a JSONL file."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from ..config import InferConfig
from ..data import read_rows
from ..data.convert import rename_columns, to_messages
from ..data.results import result_row
from ..data.validate import validate_sample
from ..infer import InferRequest, RequestConfig
from ..infer.chat import run_chat
from ..infer.engine import answers_as_finished, running
from ..utils.errors import ConfigError, DataError
from ..utils.log import get_logger
from ..utils.plugins import load_plugins
from .common import check_media_before_loading, fill_model_from_run, model_info, split_full_runs

logger = get_logger(__name__)


def build_engine(cfg: InferConfig):
    """The engine --infer_backend names: pt (continuous batching), vllm, sglang, lmdeploy or llama_cpp."""
    default = RequestConfig.from_args(cfg)
    if cfg.infer_backend == "llama_cpp":  # reads the GGUF file itself: no Hugging Face folder, no conversion
        from ..infer.llama_cpp import LlamaCppEngine

        return LlamaCppEngine.from_config(cfg, default)
    info = model_info(cfg)
    from .infer_tasks import build_task_engine, task_spec

    spec = task_spec(cfg, info)
    if spec is not None:  # an embedding, classification or reranker model: embed/classify/rerank
        return build_task_engine(cfg, info, spec)
    if cfg.infer_backend != "pt":
        from ..infer.backends import build_backend
        from ..models import load_tokenizer
        from ..templates import get_template

        tokenizer = load_tokenizer(info, cfg.trust_remote_code)
        template = get_template(tokenizer, info, system=cfg.system, max_length=cfg.max_length,
                                truncation_strategy="left", **_media_options(cfg))
        return build_backend(cfg.infer_backend, str(info.path), template, cfg.adapters, cfg.max_batch_size, default)
    from ..infer.pt import PtEngine

    return PtEngine.from_pretrained(adapters=cfg.adapters, torch_dtype=cfg.torch_dtype, attn_impl=cfg.attn_impl,
                                    system=cfg.system, max_length=cfg.max_length,
                                    max_batch_size=cfg.max_batch_size, trust_remote_code=cfg.trust_remote_code,
                                    default_config=default, info=info,
                                    max_queue=getattr(cfg, "max_queue_size", 256), media_options=_media_options(cfg))


def _media_options(cfg: Any) -> dict[str, Any]:
    """--max_pixels/--min_pixels/--fps/--max_frames, for configs that carry them (infer does; deploy may not)."""
    return cfg.media_options() if hasattr(cfg, "media_options") else {}


def prepare_infer_config(config: Any) -> InferConfig:
    cfg = InferConfig.from_any(config)
    load_plugins(cfg.plugin)
    split_full_runs(cfg)
    fill_model_from_run(cfg)
    return cfg


def infer_main(config: Any = None) -> Any:
    """Batch mode returns the result rows; --query returns the answer text; chat mode returns the last
    conversation."""
    cfg = prepare_infer_config(config)
    from .infer_tasks import task_infer, task_spec

    spec = task_spec(cfg)
    if spec is not None:
        return task_infer(cfg, spec)
    specs = cfg.val_dataset or cfg.dataset
    rows = _prompt_rows(specs, cfg) if specs else None  # bad rows and missing files fail before the model loads
    media = _media_flags(cfg)
    check_media_before_loading(cfg, media, [request for _, request in rows or []])
    with running(build_engine(cfg)) as engine:  # its threads stop with this block: at the end, on an error or Ctrl-C
        if cfg.query is not None:
            return _one_question(engine, cfg, media)
        if rows is None:
            return run_chat(engine, RequestConfig.from_args(cfg), stream=cfg.stream, media=media)
        return _batch(engine, cfg, rows)


def _media_flags(cfg: InferConfig) -> dict[str, list[str]]:
    """--images/--audios/--videos, each local file checked before the model loads."""
    media = cfg.media_flags()
    for field, items in media.items():
        for i, item in enumerate(items):
            if item.startswith(("http://", "https://", "data:")):
                continue
            path = Path(item).expanduser()
            if not path.exists():
                raise ConfigError(f"--{field}: file not found: {path.resolve()} (relative paths are resolved against "
                                  f"the current folder {Path.cwd()})")
            items[i] = str(path.resolve())
    return media


def _one_question(engine: Any, cfg: InferConfig, media: dict[str, list[str]]) -> str:
    request = InferRequest(messages=[{"role": "user", "content": cfg.query}], **media)
    config = RequestConfig.from_args(cfg)
    if not cfg.stream:
        answer = engine.infer(request, config).text
        print(answer)
        return answer
    pieces = []
    for piece in engine.stream(request, config):
        pieces.append(piece)
        print(piece, end="", flush=True)
    print()
    return "".join(pieces)


def _prompt_rows(specs: list[str], cfg: InferConfig) -> list[tuple[dict, InferRequest]]:
    out = []
    for row in read_rows(specs, cfg):
        original = dict(row.data)
        rename_columns(row, cfg.columns)
        sample = to_messages(row, "infer")
        validate_sample(row, sample, "infer")
        messages = sample["messages"]
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # the reference answer stays in the row as written
        if not messages or messages[-1]["role"] != "user":
            raise DataError(f"{row.where}: nothing to answer: the conversation must end with a user turn "
                            "(or a user turn followed by the reference answer)")
        media = {k: sample[k] for k in ("images", "audios", "videos") if sample.get(k)}
        out.append((original, InferRequest(messages=messages, **media)))
    return out


def _batch(engine, cfg: InferConfig, rows: list[tuple[dict, InferRequest]]) -> list[dict]:
    """Answers are written as they finish, in the rows' order (each line flushed): an interrupted run (Ctrl-C, an
    error) keeps every answer already made, and the log counts the rows left unanswered."""
    path = Path(cfg.result_path) if cfg.result_path else _default_result_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    requests = [request for _, request in rows]
    done: dict[int, dict] = {}
    results: list[dict] = []
    with path.open("w") as f:
        try:
            for i, response in answers_as_finished(engine, requests, RequestConfig.from_args(cfg)):
                done[i] = result_row(rows[i][0], response.text)  # answer: response; reference: labels
                while len(results) in done:  # the next row in order is answered: write it
                    _write_row(f, done[len(results)])
                    results.append(done[len(results)])
        except BaseException:
            kept = [done[i] for i in sorted(done) if i >= len(results)]  # answered, waiting for an earlier row
            for record in kept:
                _write_row(f, record)
            logger.warning(f"stopped: {len(results) + len(kept)} of {len(rows)} answers written to {path} (in the "
                           f"rows' order; {len(rows) - len(done)} rows unanswered)")
            raise
    logger.info(f"{len(results)} answers written to {path}")
    return results


def _write_row(f: Any, record: dict) -> None:
    f.write(json.dumps(record, ensure_ascii=False) + "\n")
    f.flush()


def _default_result_path(cfg: InferConfig) -> Path:
    base = Path(cfg.adapters[0]) if cfg.adapters else Path(".")
    return base / "infer_result" / f"{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


class InferEngine:
    """The Python API: `InferEngine("smollm2-135m-instruct", adapters=["output/run"]).infer(["Hi"])`."""

    def __new__(cls, model: Optional[str] = None, adapters: Sequence[str] = (), task_type: Optional[str] = None,
                pooling: Optional[str] = None, **kwargs: Any):
        """task_type embedding|seq_cls|reranker|generative_reranker (and pooling) serve a model that is not a trained
        run as one."""
        cfg = prepare_infer_config({"model": model, "adapters": list(adapters), **kwargs})
        if task_type or pooling:
            from .infer_tasks import build_task_engine, task_spec

            info = model_info(cfg)
            return build_task_engine(cfg, info, task_spec(cfg, info, task_type, pooling))
        return build_engine(cfg)


class SwiftInfer:
    """ms-swift's tutorial shape: `SwiftInfer.from_pretrained("./output").infer("question")` -> answer text."""

    def __init__(self, engine: Any, config: RequestConfig):
        self.engine = engine
        self.config = config

    @classmethod
    def from_pretrained(cls, path: str, **kwargs: Any) -> "SwiftInfer":
        """A run folder (adapter or full model), a checkpoint-N folder, a model folder, a .gguf or a model name."""
        folder = Path(path)
        if folder.is_dir() and (folder / "adapter_config.json").is_file():
            args = {"adapters": [str(folder)], **kwargs}
        else:
            args = {"model": str(path), **kwargs}
        cfg = prepare_infer_config(args)
        return cls(build_engine(cfg), RequestConfig.from_args(cfg))

    def infer(self, question: str, **kwargs: Any) -> str:
        request = InferRequest(messages=[{"role": "user", "content": question}], **kwargs)
        return self.engine.infer([request], self.config)[0].text
