"""swiftall eval: score a model (local, with adapters, or any OpenAI-compatible URL) on registered benchmarks or
local files, offline, with a 95% interval on every score, predictions item by item, and a report; `eval diff`
compares two runs. Backends: native (swiftall's engines), lm_eval (lm-evaluation-harness), evalscope."""
from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Optional

from ..config import Config, EvalConfig
from ..eval.benchmarks import format_benchmarks
from ..eval.diff import eval_diff, format_diff
from ..eval.evaluate import evaluate
from ..eval.loading import EvalTask, load_task, split_values
from ..eval.report import latest_run_dir, new_run_dir
from ..eval.runner import RunSettings
from ..eval.scoring import import_metric_libraries
from ..infer.engine import RequestConfig
from ..utils.errors import ConfigError
from ..utils.log import get_logger
from .common import fill_model_from_run, split_full_runs

logger = get_logger(__name__)

GENERATION_KEYS = {"max_tokens": "max_new_tokens", "max_new_tokens": "max_new_tokens", "temperature": "temperature",
                   "top_p": "top_p", "top_k": "top_k", "repetition_penalty": "repetition_penalty", "seed": "seed",
                   "stop": "stop"}


def resolve(config: Any) -> types.SimpleNamespace:
    """argv, a dict or an EvalConfig (checked as `swiftall eval` checks it), or a stand-in object with attributes
    (tests, notebooks; EvalConfig's defaults fill what it lacks) -> a namespace with every eval field."""
    if config is None or isinstance(config, (list, tuple, dict, Config)):
        values = EvalConfig.from_any(list(config) if isinstance(config, tuple) else config).to_dict()
    else:
        values = {**EvalConfig.field_defaults(), **vars(config)}
    cfg = types.SimpleNamespace(**values)
    cfg.adapters = list(cfg.adapters or [])
    cfg.eval_dataset = split_values(cfg.eval_dataset)
    return cfg


def _json_option(value: Any, flag: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--{flag}: not valid JSON ({exc.msg} at column {exc.colno}): {value!r}; for example "
                          "'{\"max_tokens\": 64, \"temperature\": 0}'") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"--{flag}: expected a JSON object, got {type(parsed).__name__}")
    return parsed


def generation_config(cfg: Any) -> tuple[RequestConfig, bool]:
    """--eval_generation_config -> RequestConfig (greedy unless told otherwise), and whether max tokens was given."""
    given = _json_option(cfg.eval_generation_config, "eval_generation_config")
    unknown = sorted(set(given) - set(GENERATION_KEYS))
    if unknown:
        raise ConfigError(f"--eval_generation_config: unknown key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(GENERATION_KEYS))}")
    fields = {GENERATION_KEYS[k]: v for k, v in given.items()}
    fields.setdefault("temperature", 0.0)
    fields.setdefault("seed", cfg.eval_seed)
    if isinstance(fields.get("stop"), str):
        fields["stop"] = [fields["stop"]]
    return RequestConfig(**fields), "max_new_tokens" in fields


def load_tasks(cfg: Any) -> list[EvalTask]:
    if not cfg.eval_dataset:
        raise ConfigError("swiftall eval: --eval_dataset is required: a benchmark (swiftall eval --list), a local "
                          "file (JSONL/JSON/CSV), or NAME=path for a local copy of a benchmark")
    args = _json_option(cfg.eval_dataset_args, "eval_dataset_args")
    limit = int(cfg.eval_limit) if cfg.eval_limit else None
    tasks = [load_task(spec, cfg, cfg.eval_type, limit, int(cfg.eval_seed), args) for spec in cfg.eval_dataset]
    names = [t.name for t in tasks]
    for i, task in enumerate(tasks):
        if names.count(task.name) > 1:
            task.name = f"{task.name}-{i + 1}"
    return tasks


def _note_gpus(cfg: Any) -> None:
    if cfg.gpus in (None, "", []):
        return
    import torch

    from ..utils import env

    env.select_gpus(cfg.gpus)  # CUDA is initialised lazily, so this still counts before the model loads
    if not torch.cuda.is_available():
        logger.info(f"--gpus {cfg.gpus}: no CUDA device on this machine; running on the CPU")


def build_engine(cfg: Any, default: RequestConfig) -> Any:
    if cfg.eval_url:
        return http_engine(cfg, default)
    from .infer import build_engine as build_infer_engine

    model_cfg = types.SimpleNamespace(**vars(cfg))
    split_full_runs(model_cfg)
    fill_model_from_run(model_cfg)
    if not (model_cfg.model or model_cfg.model_type):
        raise ConfigError("swiftall eval: give --model (or --adapters DIR of a swiftall run), or --eval_url of a "
                          "running server")
    cfg.model, cfg.model_type = model_cfg.model, model_cfg.model_type
    model_cfg.max_new_tokens, model_cfg.temperature = default.max_new_tokens, default.temperature
    model_cfg.top_p, model_cfg.top_k, model_cfg.repetition_penalty = default.top_p, default.top_k, None
    model_cfg.seed, model_cfg.max_queue_size = cfg.eval_seed, max(256, int(cfg.eval_concurrency) * 2)
    return build_infer_engine(model_cfg)


def http_engine(cfg: Any, default: RequestConfig) -> Any:
    import httpx

    from ..infer.client import HttpEngine

    try:
        return HttpEngine(cfg.eval_url, model=cfg.eval_model, api_key=cfg.eval_api_key, default_config=default,
                          max_concurrency=int(cfg.eval_concurrency))
    except httpx.HTTPError as exc:
        raise ConfigError(f"--eval_url {cfg.eval_url}: cannot reach the server ({type(exc).__name__}: {exc}); start "
                          "one with 'swiftall deploy --model M' or check the host, port and the /v1 suffix") from None


def resolved_config(cfg: Any, generation: RequestConfig) -> dict[str, Any]:
    keys = ("model", "model_type", "adapters", "eval_url", "eval_model", "eval_backend", "infer_backend",
            "eval_dataset", "eval_limit", "eval_num_fewshot", "eval_seed", "eval_type", "eval_mcq_mode",
            "eval_keep_think", "system", "torch_dtype", "max_length", "gpus")
    out = {k: getattr(cfg, k) for k in keys}
    out["generation"] = {k: v for k, v in vars(generation).items() if v not in (None, [], 0) or k == "temperature"}
    out["eval_dataset_args"] = _json_option(cfg.eval_dataset_args, "eval_dataset_args")
    out["strip_think"] = not cfg.eval_keep_think
    return out


def run_dir(cfg: Any) -> tuple[Path, bool]:
    if cfg.resume in (None, False, "", "false"):
        return new_run_dir(cfg.eval_output_dir), False
    if isinstance(cfg.resume, (str, Path)) and str(cfg.resume) not in ("true", "True"):
        folder = Path(cfg.resume)
        if not (folder / "predictions").is_dir():
            raise ConfigError(f"--resume {folder}: not the folder of an earlier 'swiftall eval' run (no predictions/)")
        return folder, True
    latest = latest_run_dir(cfg.eval_output_dir)
    if latest is None:
        logger.info(f"--resume: no earlier run under {cfg.eval_output_dir}; starting a new one")
        return new_run_dir(cfg.eval_output_dir), False
    return latest, True


def eval_main(config: Any = None) -> Optional[dict[str, Any]]:
    """Returns the report (also written to eval_output/<timestamp>/report.json). `swiftall eval diff A B` (argv
    starting with diff) compares two runs instead."""
    if isinstance(config, (list, tuple)) and config[:1] == ["diff"]:
        if len(config) != 3:
            raise ConfigError("usage: swiftall eval diff RUN_A RUN_B (two eval run folders or report.json files)")
        return eval_diff_main(config[1], config[2])
    cfg = resolve(config)
    if cfg.eval_list:
        print(format_benchmarks())
        return None
    if cfg.eval_backend not in ("native", "lm_eval", "evalscope"):
        raise ConfigError(f"--eval_backend {cfg.eval_backend!r}: choose native, lm_eval or evalscope")
    generation, max_given = generation_config(cfg)
    tasks = load_tasks(cfg)           # bad data fails before the model loads
    _note_gpus(cfg)
    if cfg.eval_backend != "native":
        from ..eval.harness import run_external

        return run_external(cfg, tasks, generation, resolved_config(cfg, generation))
    import_metric_libraries(tasks)    # a missing metric library stops the run before the model loads
    engine = build_engine(cfg, generation)
    folder, resuming = run_dir(cfg)
    settings = RunSettings(generation, int(cfg.eval_num_fewshot or 0), int(cfg.eval_seed),
                           keep_think=bool(cfg.eval_keep_think), concurrency=int(cfg.eval_concurrency),
                           system=cfg.system, progress=bool(cfg.eval_progress))
    with engine:  # closed on the way out; work still queued is cancelled on an error or Ctrl-C (no thread left)
        try:
            return evaluate(engine, tasks, settings, folder, resolved_config(cfg, generation), resuming,
                            cfg.eval_mcq_mode, max_given)
        except Exception as exc:
            _reraise_connection(exc, cfg, folder)
            raise


def _reraise_connection(exc: Exception, cfg: Any, folder: Path) -> None:
    if type(exc).__module__.startswith("httpx") or type(exc).__name__ == "HttpEngineError":
        raise ConfigError(f"--eval_url {cfg.eval_url}: the server stopped answering ({type(exc).__name__}: "
                          f"{str(exc)[:200]}); the answers so far are in {folder}/predictions; rerun with "
                          f"--resume {folder} to continue") from None


def eval_diff_main(run_a: str, run_b: str) -> dict[str, Any]:
    """`swiftall eval diff RUN_A RUN_B`: prints the comparison, returns it."""
    diff = eval_diff(run_a, run_b)
    print(format_diff(diff))
    return diff
