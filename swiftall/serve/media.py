"""Which image/audio/video URLs a request may name.

`data:` URLs always; `http(s)://` only when every address the host resolves to is public (not loopback,
private, link-local or reserved) unless `allow_private_urls`; local paths (plain or `file://`) never, unless
`allow_local_media` names a folder that the resolved path lies under.
"""
from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from .errors import ApiError


def check_media_url(url: str, allow_local_media: Optional[str] = None, allow_private_urls: bool = False,
                    param: str = "messages") -> str:
    """The URL (or resolved local path) to hand to the template; ApiError 400 when the rules refuse it."""
    if not isinstance(url, str) or not url:
        raise ApiError(400, "a media URL must be a non-empty string", param, "invalid_media_url")
    scheme = urlparse(url).scheme.lower()
    if scheme == "data":
        return url
    if scheme in ("http", "https"):
        if not allow_private_urls:
            _check_public(url, param)
        return url
    if scheme in ("file", "") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):  # file://, path, C:\...
        return _check_local(unquote(urlparse(url).path) if scheme == "file" else url, allow_local_media, param)
    raise ApiError(400, f"media URL scheme '{scheme}:' is not supported; use data:, http(s):// or an allowed "
                   "local path", param, "invalid_media_url")


def _check_public(url: str, param: str) -> None:
    host = urlparse(url).hostname
    if not host:
        raise ApiError(400, f"media URL {url!r} has no host", param, "invalid_media_url")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        raise ApiError(400, f"media URL host {host!r} does not resolve", param, "invalid_media_url") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise ApiError(400, f"media URL {url!r} points to a non-public address ({ip}); the server refuses "
                           "it unless started with --allow_private_media_urls true", param, "media_url_forbidden")


def _check_local(path: str, allow_local_media: Optional[str], param: str) -> str:
    if not allow_local_media:
        raise ApiError(400, "local media paths are refused; start the server with --allow_local_media DIR to "
                       "serve files under DIR", param, "media_url_forbidden")
    root = Path(allow_local_media).resolve()
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_relative_to(root):
        raise ApiError(400, f"local media path {path!r} is outside --allow_local_media {root}", param,
                       "media_url_forbidden")
    if not resolved.is_file():
        raise ApiError(400, f"local media file {path!r} does not exist", param, "invalid_media_url")
    return str(resolved)
