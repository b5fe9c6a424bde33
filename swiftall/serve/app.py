"""The FastAPI app: OpenAI routes over an Engine, bearer-key auth, a body size limit, OpenAI-shaped errors."""
from __future__ import annotations

import hmac
import json
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..infer.engine import Engine, shut_down
from ..utils.log import get_logger
from .errors import ApiError, error_body, validation_error
from .handlers import Handlers, ServeSettings
from .protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

logger = get_logger(__name__)
OPEN_PATHS = {"/health"}


def create_app(engine: Engine, settings: ServeSettings, close_engine: bool = True) -> FastAPI:
    handlers = Handlers(engine, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        if close_engine:  # uvicorn has let in-flight requests finish: what the engine still runs has no client left
            shut_down(engine, cancel=True)

    app = FastAPI(title="swiftall OpenAI-compatible server", version="1", lifespan=lifespan)
    _install_errors(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(AuthMiddleware, key=settings.api_key)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return handlers.models()

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest) -> Any:
        if body.stream:
            return StreamingResponse(await handlers.chat_stream(body), media_type="text/event-stream")
        return await handlers.chat(body)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Any:
        if body.stream:
            return StreamingResponse(await handlers.completion_stream(body), media_type="text/event-stream")
        return await handlers.completion(body)

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest) -> Any:
        return await handlers.embeddings(body)

    from .tasks import install_task_routes

    install_task_routes(app, handlers)  # /v1/rerank, /v1/classify
    app.state.handlers = handlers
    return app


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error(list(exc.errors()))
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        code = "not_found" if exc.status_code == 404 else None
        return JSONResponse(error_body(exc.status_code, message, None, code), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception(f"request failed: {exc}")
        return JSONResponse(error_body(500, f"internal error: {type(exc).__name__}: {exc}"), status_code=500)


class _Asgi:
    def __init__(self, app: Any, **options: Any):
        self.app = app
        self.__dict__.update(options)

    async def reject(self, send: Any, status: int, message: str, code: str) -> None:
        body = json.dumps(error_body(status, message, None, code)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AuthMiddleware(_Asgi):
    """`Authorization: Bearer KEY` on every route but /health (compared in constant time)."""

    key: str

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), self.key.encode()):
            why = "Incorrect API key provided." if token else "Missing API key: send 'Authorization: Bearer KEY'."
            return await self.reject(send, 401, why, "invalid_api_key")
        return await self.app(scope, receive, send)


class BodyLimitMiddleware(_Asgi):
    """Refuse bodies over `limit` bytes with 413, by Content-Length or while a chunked body arrives."""

    limit: int

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        message = f"request body is larger than the server's limit of {self.limit} bytes (--max_body_bytes)"
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self.reject(send, 413, message, "request_too_large")
        seen = 0

        async def counting_receive() -> Any:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return event

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self.reject(send, 413, message, "request_too_large")


class _TooLarge(Exception):
    pass
