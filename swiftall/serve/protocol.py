"""OpenAI request bodies as pydantic models (they also make /openapi.json). Unknown fields are accepted and
ignored, as OpenAI-compatible servers do, so newer clients keep working."""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Body):
    include_usage: bool = False


class FunctionDef(_Body):
    name: str
    description: Optional[str] = None
    parameters: Optional[dict[str, Any]] = None


class Tool(_Body):
    type: Literal["function"] = "function"
    function: FunctionDef


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Optional[Union[str, list[dict[str, Any]]]] = None
    name: Optional[str] = None
    tool_calls: Optional[list[dict[str, Any]]] = None
    tool_call_id: Optional[str] = None


class _Sampling(_Body):
    model: str
    max_tokens: Optional[int] = Field(None, ge=1)
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    top_k: Optional[int] = Field(None, ge=-1)
    repetition_penalty: Optional[float] = Field(None, gt=0)
    n: int = Field(1, ge=1, le=16)
    stop: Optional[Union[str, list[str]]] = None
    seed: Optional[int] = None
    stream: bool = False
    stream_options: Optional[StreamOptions] = None
    user: Optional[str] = None
    ignore_eos: bool = False  # vLLM's extension: generate exactly max_tokens (benchmarks)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: Optional[int] = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: Optional[int] = Field(None, ge=0, le=20)
    tools: Optional[list[Tool]] = None
    tool_choice: Optional[Union[Literal["none", "auto", "required"], dict[str, Any]]] = None


class CompletionRequest(_Sampling):
    """`prompt`: a string, strings, token ids, or lists of token ids (one choice per prompt); `max_tokens` may be 0
    with `echo` (the prompt scored, nothing generated)."""

    prompt: Union[str, list[str], list[int], list[list[int]]]
    max_tokens: Optional[int] = Field(None, ge=0)
    logprobs: Optional[int] = Field(None, ge=0, le=5)
    echo: bool = False
    suffix: Optional[str] = None


class EmbeddingRequest(_Body):
    """OpenAI's `input`, or vLLM's chat form: `messages` (content parts may be image_url, input_audio, video_url),
    embedded as one item by an embedding model."""

    model: str
    input: Optional[Union[str, list[str], list[int], list[list[int]]]] = None
    messages: Optional[list[ChatMessage]] = Field(None, min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = Field(None, ge=1)
    user: Optional[str] = None

    @model_validator(mode="after")
    def _one_input(self) -> "EmbeddingRequest":
        if (self.input is None) == (self.messages is None):
            raise ValueError("give either 'input' (texts or token ids) or 'messages' (a chat, media parts allowed)")
        return self
