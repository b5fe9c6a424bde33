"""`--infer_backend llama_cpp`: a GGUF file run by llama.cpp (llama-cpp-python) behind the Engine interface.

The prompt is rendered with the chat template stored in the GGUF (llama-cpp-python's Jinja2 formatter) and
tokenized by llama.cpp's own tokenizer; answers stream token by token through the same `Answer` the PyTorch engine
uses (stop strings held back, log-probabilities from the logits of each step). llama.cpp holds one KV cache per
context, so requests run one at a time in arrival order (a FIFO ticket lock; a full queue answers 429), and a
request that shares its start with the previous one reuses that prefix of the cache.
"""
from __future__ import annotations

import collections
import random
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Optional, Sequence

from ..utils.errors import ConfigError, MissingDependencyError
from .detok import Answer
from .engine import Engine, InferRequest, InferResponse, QueueFullError, RequestConfig, ShuttingDownError, StreamEvent

DEFAULT_CTX = 4096   # context when --max_length is not given (at most the model's own)


def find_gguf_file(model: Optional[str]) -> Path:
    """--model as a .gguf file, an export folder holding one, or a registered name shipped as GGUF."""
    if not model:
        raise ConfigError("--infer_backend llama_cpp needs --model FILE.gguf (or a folder holding one)")
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir():
        files = sorted(p for p in path.glob("*.gguf") if not p.name.endswith("-lora.gguf"))
        if len(files) == 1:
            return files[0]
        names = ", ".join(p.name for p in files) or "none"
        raise ConfigError(f"--model {model}: --infer_backend llama_cpp needs one .gguf model file in the folder, "
                          f"found {names}; pass the file itself, or write one with 'swiftall export --model "
                          f"{model} --quant_method gguf --gguf_type q8_0'")
    embedded = _embedded(model)
    if embedded is not None:
        return embedded
    raise ConfigError(f"--model {model}: --infer_backend llama_cpp reads GGUF files; no such file or folder (write "
                      "one with 'swiftall export --model M --quant_method gguf')")


def _embedded(name: str) -> Optional[Path]:
    from ..hub.embedded import embedded_gguf
    from ..models.registry import get_model_meta

    meta = get_model_meta(name)
    return embedded_gguf(meta.embedded_package) if meta is not None and meta.embedded_package else None


def load_llama(path: Path, n_ctx: int, n_threads: Optional[int], lora: Optional[Path] = None) -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as exc:
        raise MissingDependencyError(f"'llama_cpp' (llama-cpp-python) is needed for --infer_backend llama_cpp but "
                                     f"could not be loaded ({exc}). Install it with: pip install llama-cpp-python"
                                     ) from None
    # threads: llama-cpp-python's default (half the cores) unless given; llama.cpp's threads spin while they wait for
    # each other, so on a shared, loaded machine fewer threads decode faster (1 vs 2 here: 22 vs 1.4 tokens/s)
    threads = {"n_threads": n_threads, "n_threads_batch": n_threads} if n_threads else {}
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False,
                               lora_path=str(lora) if lora else None, **threads)
    except ValueError as exc:
        raise ConfigError(f"{path}: llama.cpp could not load this GGUF file ({exc})") from None


class GgufTokenizer:
    """llama.cpp's tokenizer with the two calls `Answer` makes (`decode`)."""

    def __init__(self, llm: Any):
        self.llm = llm

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.llm.detokenize(list(ids), special=not skip_special_tokens).decode("utf-8", "replace")

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)


class FairLock:
    """One holder at a time, served in arrival order; at most `max_queue` waiting."""

    def __init__(self, max_queue: int = 256):
        self.cv = threading.Condition()
        self.queue: collections.deque = collections.deque()
        self.max_queue, self.closing = max_queue, False

    def __enter__(self) -> "FairLock":
        ticket = object()
        with self.cv:
            if self.closing:
                raise ShuttingDownError("the llama.cpp engine is shutting down and takes no new requests")
            if len(self.queue) > self.max_queue:   # the first in the queue is the one running
                raise QueueFullError(f"the llama.cpp engine is busy and {self.max_queue} requests are waiting "
                                     "(--max_queue_size); retry later")
            self.queue.append(ticket)
            self.cv.wait_for(lambda: self.queue[0] is ticket)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.cv:
            self.queue.popleft()
            self.cv.notify_all()

    def waiting(self) -> int:
        with self.cv:
            return len(self.queue)


class LlamaCppEngine(Engine):
    """The Engine over one GGUF file. `template` and `adapters` follow build_backend's signature: the GGUF's own
    chat template is used, and an adapter is a LoRA GGUF (`swiftall export --gguf_lora true`)."""

    def __init__(self, model_dir: str, template: Any = None, adapters: Sequence[str] = (), max_batch_size: int = 1,
                 default_config: Optional[RequestConfig] = None, max_length: Optional[int] = None,
                 n_threads: Optional[int] = None, system: Optional[str] = None, max_queue: int = 256):
        self.path = find_gguf_file(model_dir)
        self.gguf_file = self.path
        self.llm = load_llama(self.path, _context(self.path, max_length), n_threads, _lora_file(adapters))
        self.max_model_len = self.llm.n_ctx()
        self.default_config = default_config or RequestConfig()
        self.tokenizer = GgufTokenizer(self.llm)
        self.system, self.max_batch_size = system, max_batch_size
        self.template = None            # the server inlines tools into messages; the GGUF template renders them
        self.lock, self.cancelled = FairLock(max_queue), False
        self.eos_ids = _eog_ids(self.llm)
        self.formatter = _formatter(self.llm, self.path)

    @classmethod
    def from_config(cls, cfg: Any, default: RequestConfig) -> "LlamaCppEngine":
        """From an infer/deploy/eval config: --model, --adapters, --max_length, --system, --max_queue_size."""
        return cls(cfg.model or cfg.model_type, adapters=list(cfg.adapters or []), default_config=default,
                   max_length=getattr(cfg, "max_length", None), system=getattr(cfg, "system", None),
                   max_queue=int(getattr(cfg, "max_queue_size", 256) or 256),
                   max_batch_size=int(getattr(cfg, "max_batch_size", 1) or 1))

    # ---- prompts ----------------------------------------------------------------------------------
    def prompt_ids(self, request: Any) -> list[int]:
        req = InferRequest.coerce(request)
        if self.llm is None:
            raise ShuttingDownError("the llama.cpp engine is closed and takes no new requests")
        if req.images or req.audios or req.videos:
            raise ConfigError("--infer_backend llama_cpp serves text-only GGUF models; images, audios and videos "
                              "need --infer_backend pt")
        if req.prompt_ids is not None:
            return list(req.prompt_ids)
        if req.prompt is not None:
            return self.tokenizer.encode(req.prompt, add_bos=_adds_bos(self.llm))
        messages = [{**m, "content": _text(m.get("content"))} for m in req.messages]
        if self.system and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system})
        try:
            text = self.formatter(messages=messages, tools=req.tools).prompt
        except Exception as exc:  # jinja2 errors and the template's raise_exception
            raise ConfigError(f"{self.path.name}: its chat template refused these messages ({exc})") from None
        return self.tokenizer.encode(text + (req.prefill or ""))

    def count_prompt_tokens(self, request: Any) -> Optional[int]:
        return len(self.prompt_ids(request))

    # ---- generation -------------------------------------------------------------------------------
    def infer(self, requests: list[Any], config: Optional[RequestConfig] = None) -> list[InferResponse]:
        config = config or self.default_config
        out = []
        for request in requests:
            answers = [self._answer(request, config, i, lambda event: None) for i in range(max(1, config.n))]
            first = answers[0].response()
            first.choices = [a.response() for a in answers[1:]]
            out.append(first)
        return out

    def stream(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[str]:
        for event in self.stream_events(request, config):
            if event.text:
                yield event.text

    def stream_events(self, request: Any, config: Optional[RequestConfig] = None) -> Iterator[StreamEvent]:
        config = config or self.default_config
        for index in range(max(1, config.n)):
            pending: list[StreamEvent] = []
            for _ in self._steps(request, config, index, pending.append):
                for event in pending:
                    if isinstance(event, BaseException):   # the answer's error, emitted by Answer.on_finish
                        raise event
                    yield event
                pending.clear()

    def _answer(self, request: Any, config: RequestConfig, index: int, emit: Any) -> Answer:
        answer = None
        for answer in self._steps(request, config, index, emit):
            pass
        return answer

    def _steps(self, request: Any, config: RequestConfig, index: int, emit: Any) -> Iterator[Answer]:
        """Generate one answer under the lock, yielding after each token (the caller forwards emitted events)."""
        ids = self.prompt_ids(request)
        budget = min(config.max_new_tokens, self.max_model_len - len(ids))
        if budget < 1:
            raise ConfigError(f"the prompt has {len(ids)} tokens; the context holds {self.max_model_len} "
                              "(--max_length): shorten the messages")
        eos = set() if config.ignore_eos else self.eos_ids | set(config.stop_token_ids)
        answer = Answer(self.tokenizer, len(ids), list(config.stop), eos, index=index,
                        prefix=InferRequest.coerce(request).prefill or "", emit=emit)
        answer.seq = seq = SimpleNamespace(finish_reason="length", generated=[])
        with self.lock:
            self._seed(config, index)
            error = None
            try:
                for token in self.llm.generate(ids, **sampling_kwargs(config)):
                    if self.cancelled:
                        raise ShuttingDownError("the llama.cpp engine was closed while answering")
                    top = self._logprobs(token, config.top_logprobs) if config.logprobs else (None, [])
                    seq.generated.append(token)
                    if answer.on_token(seq, token, *top) or token in eos:
                        seq.finish_reason = "stop"
                    if seq.finish_reason == "stop" or len(seq.generated) >= budget:
                        break
                    yield answer
            except Exception as exc:  # llama.cpp's decode errors reach the caller as the answer's error
                error = exc
            answer.on_finish(seq, error)
        yield answer

    def _seed(self, config: RequestConfig, index: int) -> None:
        seed = config.seed + index if config.seed is not None else random.randrange(2**31)
        self.llm.set_seed(seed)

    def _logprobs(self, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
        """Log-probability of `token` and the k most likely tokens, from the logits of the step that chose it."""
        import llama_cpp
        import numpy as np

        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),))
        logits = logits.astype(np.float64)
        logp = logits - logits.max()
        logp -= np.log(np.exp(logp).sum())
        best = np.argsort(-logp)[: max(0, int(k))]
        return float(logp[token]), [(int(t), float(logp[t])) for t in best]

    def close(self, cancel: bool = False) -> None:
        """Finish the queued and running requests (with `cancel`, end them at their next token), then free the
        model."""
        self.cancelled = self.cancelled or cancel
        with self.lock.cv:
            self.lock.closing = True
            self.lock.cv.wait_for(lambda: not self.lock.queue)
            llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


def sampling_kwargs(config: RequestConfig) -> dict[str, Any]:
    """RequestConfig -> `Llama.generate` keywords; None keeps llama.cpp's defaults (temperature 0.8, top_k 40,
    top_p 0.95, min_p 0.05); temperature 0 is greedy."""
    out: dict[str, Any] = {}
    if config.temperature is not None:
        out["temp"] = float(config.temperature)
    if config.top_p is not None:
        out["top_p"] = float(config.top_p)
    if config.top_k is not None:
        out["top_k"] = int(config.top_k)
    if config.repetition_penalty is not None:
        out["repeat_penalty"] = float(config.repetition_penalty)
    return out


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _context(path: Path, max_length: Optional[int]) -> int:
    from gguf import GGUFReader

    trained = None
    for key, fld in GGUFReader(str(path), "r").fields.items():
        if key.endswith(".context_length"):
            trained = int(fld.parts[fld.data[0]][0])
    wanted = int(max_length) if max_length else DEFAULT_CTX
    return min(wanted, trained) if trained else wanted


def _lora_file(adapters: Sequence[str]) -> Optional[Path]:
    if not adapters:
        return None
    if len(adapters) > 1:
        raise ConfigError("--infer_backend llama_cpp loads one LoRA adapter (a GGUF from 'swiftall export "
                          f"--gguf_lora true'), got {len(adapters)}")
    path = Path(str(adapters[0]).split("=", 1)[-1])
    files = [path] if path.suffix == ".gguf" else sorted(path.glob("*-lora.gguf")) if path.is_dir() else []
    if len(files) != 1 or not files[0].is_file():
        raise ConfigError(f"--adapters {adapters[0]}: --infer_backend llama_cpp needs the adapter as a LoRA GGUF; "
                          f"write one with 'swiftall export --adapters {path} --gguf_lora true', or merge it "
                          "(--merge_lora true) and export the merged model to GGUF")
    return files[0]


def _eog_ids(llm: Any) -> set[int]:
    """End-of-generation tokens as llama.cpp marks them (eos, eot, <|im_end|>...)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return {t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)} | {llm.token_eos()}


def _adds_bos(llm: Any) -> bool:
    return str(llm.metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"


def _formatter(llm: Any, path: Path) -> Any:
    """The GGUF's chat template (tokenizer.chat_template) as llama-cpp-python renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ConfigError(f"{path}: the GGUF file holds no chat template (tokenizer.chat_template); chat needs one "
                          "(export from a model whose tokenizer has one), or send raw prompts to /v1/completions")
    eos, bos = llm.token_eos(), llm.token_bos()
    text = lambda t: llm.detokenize([t], special=True).decode("utf-8", "replace") if t != -1 else ""  # noqa: E731
    return Jinja2ChatFormatter(template=template, eos_token=text(eos), bos_token=text(bos))
