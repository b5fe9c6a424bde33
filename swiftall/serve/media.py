"""Which image/audio/video URLs a request may name.

`data:` URLs always; `http(s)://` only when every address the host resolves to is public (not loopback,
private, link-local or reserved) unless `allow_private_urls`, at every redirect, the connection going to the
address that was checked; local paths (plain or `file://`) never, unless `allow_local_media` names a folder that
the resolved path lies under. The server downloads http(s) media itself (`download_media`) before a request
reaches the engine.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from ..utils.fetch import FetchError, FetchPolicy, fetch_url
from .errors import ApiError

MAX_MEDIA_BYTES = 50 * 1024 * 1024
MEDIA_TIMEOUT_S = 20.0


def check_media_url(url: str, allow_local_media: Optional[str] = None, param: str = "messages") -> str:
    """The URL (or resolved local path) to hand on; ApiError 400 when the rules refuse it. http(s) URLs are checked
    again, address by address, when `download_media` fetches them."""
    if not isinstance(url, str) or not url:
        raise ApiError(400, "a media URL must be a non-empty string", param, "invalid_media_url")
    try:
        parsed = urlparse(url)
        scheme, host = parsed.scheme.lower(), parsed.hostname if parsed.scheme.lower() in ("http", "https") else ""
    except ValueError as exc:
        raise ApiError(400, f"media URL {url[:120]!r} is malformed ({exc})", param, "invalid_media_url") from None
    if scheme == "data":
        return url
    if scheme in ("http", "https"):
        if not host:
            raise ApiError(400, f"media URL {url[:120]!r} has no host", param, "invalid_media_url")
        return url  # downloaded by download_media, which applies the address rules at connection time
    if scheme in ("file", "") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # file://, path, C:\...
        return _check_local(unquote(parsed.path) if scheme == "file" else url, allow_local_media, param)
    raise ApiError(400, f"media URL scheme '{scheme}:' is not supported; use data:, http(s):// or an allowed "
                   "local path", param, "invalid_media_url")


async def download_media(media: dict[str, list], allow_private_urls: bool, params: dict[tuple[str, int], str],
                         max_bytes: int = MAX_MEDIA_BYTES, timeout: float = MEDIA_TIMEOUT_S) -> None:
    """Replace every http(s) URL in `media` by its bytes, downloaded concurrently through the one media fetcher
    (utils/fetch.py), so the engine never fetches a URL a client named. `params[(kind, i)]` names the request
    field of each item, for the error."""
    policy = FetchPolicy(allow_private=allow_private_urls, max_bytes=max_bytes, timeout=timeout)
    jobs = [(kind, i, item) for kind, items in media.items() for i, item in enumerate(items)
            if isinstance(item, str) and urlparse(item).scheme.lower() in ("http", "https")]

    async def one(kind: str, i: int, url: str) -> None:
        try:
            media[kind][i] = await asyncio.to_thread(fetch_url, url, policy, kind)
        except FetchError as exc:
            raise ApiError(400, str(exc), params.get((kind, i), "messages"), exc.code) from None

    await asyncio.gather(*(one(*job) for job in jobs))


def _check_local(path: str, allow_local_media: Optional[str], param: str) -> str:
    if not allow_local_media:
        raise ApiError(400, "local media paths are refused; start the server with --allow_local_media DIR to "
                       "serve files under DIR", param, "media_url_forbidden")
    root = Path(allow_local_media).resolve()
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte, an unknown ~user, a symlink loop
        raise ApiError(400, f"local media path {path[:120]!r} is not a usable path ({exc})", param,
                       "invalid_media_url") from None
    if not resolved.is_relative_to(root):
        raise ApiError(400, f"local media path {path!r} is outside --allow_local_media {root}", param,
                       "media_url_forbidden")
    if not resolved.is_file():
        raise ApiError(400, f"local media file {path!r} does not exist", param, "invalid_media_url")
    return str(resolved)
