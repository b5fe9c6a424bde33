"""A stand-in engine for server tests that need no model: it records each request that reaches it."""
from __future__ import annotations


class RecordingEngine:
    max_model_len = 4096

    def __init__(self, answer: str = "seen"):
        self.answer, self.requests = answer, []

    def count_prompt_tokens(self, request):
        return 3

    async def infer_async(self, request, config):
        from swiftall.infer.engine import InferResponse

        self.requests.append(request)
        return InferResponse(self.answer, "stop", 3, 3)

    def close(self):
        pass
