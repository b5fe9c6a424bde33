"""Load a model the way its user would (transformers for folders, llama.cpp or transformers for GGUF) and give
next-token logits and greedy continuations of token ids, so the export check compares any two of them on the
same token ids."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..utils.errors import ConfigError, ModelNotFoundError
from .gguf import find_gguf, llama_cpp_available


class Scorer:
    loader = ""

    def logits(self, ids: Sequence[int]) -> np.ndarray:          # [len(ids), vocab] float32
        raise NotImplementedError

    def greedy(self, ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class HfScorer(Scorer):
    """A transformers model (plain, bnb, GPTQ, AWQ, FP8 or dequantized GGUF)."""

    def __init__(self, model: Any, loader: str = "transformers"):
        self.model, self.loader = model.eval(), loader

    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([list(ids)], device=self._device()))
        return out.logits[0].float().cpu().numpy()

    def greedy(self, ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        import torch

        prompt = torch.tensor([list(ids)], device=self._device())
        with torch.no_grad():
            out = self.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                      max_new_tokens=max_new_tokens, eos_token_id=sorted(stop_ids) or None,
                                      pad_token_id=next(iter(stop_ids), 0), temperature=None, top_p=None,
                                      top_k=None)
        return _cut(out[0, prompt.shape[1]:].tolist(), stop_ids)


class LlamaCppScorer(Scorer):
    """A GGUF file run by llama.cpp (llama-cpp-python), fed the same token ids."""

    loader = "llama.cpp"

    def __init__(self, gguf_file: Path, n_ctx: int = 2048, lora: Optional[Path] = None):
        import llama_cpp

        self.llm = llama_cpp.Llama(model_path=str(gguf_file), n_ctx=n_ctx, logits_all=True, verbose=False,
                                   lora_path=str(lora) if lora else None)

    def logits(self, ids: Sequence[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(list(ids))
        return np.array(self.llm.scores[: len(ids)], dtype=np.float32)

    def greedy(self, ids: Sequence[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
        self.llm.reset()
        self.llm.eval(list(ids))
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))
            if token in stop_ids:
                break
            out.append(token)
            self.llm.eval([token])
        return out

    def close(self) -> None:
        self.llm.close()


def _cut(tokens: list[int], stop_ids: set[int]) -> list[int]:
    for i, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:i]
    return tokens


def load_hf_folder(folder: Path, trust_remote_code: bool = False) -> Any:
    """An exported folder through transformers; its quantization_config picks the quantizer (bnb, GPTQ, ...)."""
    import torch

    from .quant import model_class

    config = Path(folder) / "config.json"
    if not config.is_file():
        raise ModelNotFoundError(f"{folder}: no config.json (not a model folder or an export folder)")
    kwargs: dict[str, Any] = {"device_map": "cpu", "trust_remote_code": trust_remote_code}
    if "quantization_config" not in config.read_text():
        kwargs["dtype"] = torch.float32
    return model_class(folder).from_pretrained(folder, **kwargs)


def load_exported(path: Path, prefer: str = "auto", trust_remote_code: bool = False) -> Scorer:
    """`prefer`: auto (llama.cpp for GGUF when installed), llama.cpp, or transformers."""
    gguf = find_gguf(path)
    if gguf is None:
        return HfScorer(load_hf_folder(path, trust_remote_code))
    if prefer == "llama.cpp" or (prefer == "auto" and llama_cpp_available()):
        if not llama_cpp_available():
            raise ConfigError("loading a GGUF file with llama.cpp needs llama-cpp-python (pip install "
                              "llama-cpp-python); or check it through transformers")
        return LlamaCppScorer(gguf)
    return HfScorer(load_gguf_transformers(gguf), loader="transformers (GGUF dequantized)")


def load_gguf_transformers(gguf: Path) -> Any:
    """A GGUF file dequantized by transformers, in memory (no cached copy of a file that is only checked)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:
        raise ModelNotFoundError(f"{gguf}: transformers could not load this GGUF file ({exc})") from exc
