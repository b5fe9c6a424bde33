"""Downloading a media URL: the one fetcher of the server, `infer` and data loading.

The host is resolved once; with `allow_private=False` every address it resolves to must be public (not loopback,
private, link-local, reserved...), and the connection goes to that checked address (the name is not looked up a
second time, so DNS rebinding cannot swap in a private address; `Host` and TLS's server name stay the name).
Redirects are followed by hand, each one checked the same way (scheme, resolution, address). The whole download
has a deadline, a size limit (by Content-Length first, then while reading) and a content-type check.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urljoin, urlsplit

from .errors import DataError

REDIRECTS = {301, 302, 303, 307, 308}
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
ACCEPTED_TYPES = {"images": ("image/",), "audios": ("audio/", "video/webm", "video/ogg", "application/ogg"),
                  "videos": ("video/", "image/gif", "image/webp", "application/mp4")}
CHUNK = 64 * 1024


class FetchError(DataError):
    """A URL that was refused or could not be downloaded. `code`: media_url_forbidden (the rules refuse it),
    media_too_large, or invalid_media_url (it does not resolve, answers an error, times out...)."""

    def __init__(self, message: str, code: str = "invalid_media_url"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = True          # False: every hop must resolve to public addresses only
    max_bytes: int = 200 * 1024 * 1024
    timeout: float = 20.0               # seconds for the whole download, redirects included
    max_redirects: int = 5
    cafile: Optional[str] = None        # certificates to trust for https (default: the system's)


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[tuple[int, tuple], ...]   # (family, sockaddr) as getaddrinfo gave them


def fetch_url(url: str, policy: FetchPolicy = FetchPolicy(), kind: Optional[str] = None) -> bytes:
    """The body of `url` (http/https); FetchError when a rule refuses it or the download fails. `kind` (images,
    audios, videos) checks the answer's Content-Type."""
    deadline = time.monotonic() + policy.timeout
    current = url
    for _hop in range(policy.max_redirects + 1):
        target = resolve(current, policy)
        location = _request(target, current, policy, deadline, kind)
        if isinstance(location, bytes):
            return location
        current = urljoin(current, location)
    raise FetchError(f"{_short(url)}: more than {policy.max_redirects} redirects")


def resolve(url: str, policy: FetchPolicy) -> _Target:
    """Parse and resolve `url` once, applying the address rule; the connection goes to these addresses."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{_short(url)}: scheme '{scheme}:' is not allowed for a download (http or https only)",
                         "media_url_forbidden")
    host = parts.hostname
    if not host:
        raise FetchError(f"{_short(url)}: the URL has no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"{_short(url)}: the port is not a number from 0 to 65535") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchError(f"{_short(url)}: the host {host!r} does not resolve") from None
    addresses = tuple(dict.fromkeys((info[0], info[4]) for info in infos))
    if not addresses:
        raise FetchError(f"{_short(url)}: the host {host!r} does not resolve")
    if not policy.allow_private:
        for _family, sockaddr in addresses:
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if not is_public(ip):
                raise FetchError(f"media URL {_short(url)} points to a non-public address ({ip}); the server "
                                 "refuses it unless started with --allow_private_media_urls true",
                                 "media_url_forbidden")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port, path, addresses)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable (IPv4-mapped IPv6 addresses are judged by their IPv4 address)."""
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_global and not (mapped or ip).is_multicast


def _request(target: _Target, url: str, policy: FetchPolicy, deadline: float, kind: Optional[str]) -> bytes | str:
    """The body (bytes), or the Location of a redirect (str)."""
    conn = _connect(target, url, deadline, policy)
    try:
        conn.request("GET", target.path, headers={"Accept-Encoding": "identity", "User-Agent": "swiftall"})
        response = conn.getresponse()
        if response.status in REDIRECTS:
            location = response.getheader("Location")
            if not location:
                raise FetchError(f"{_short(url)}: HTTP {response.status} redirect without a Location")
            return location
        if response.status != 200:
            raise FetchError(f"{_short(url)}: the server answered HTTP {response.status} {response.reason}")
        _check_type(response.getheader("Content-Type") or "", url, kind)
        return _read(conn, response, url, policy, deadline)
    except (OSError, http.client.HTTPException) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (str(exc) or type(exc).__name__)
        raise FetchError(f"cannot download {_short(url)}: {why}") from None
    finally:
        conn.close()


def _connect(target: _Target, url: str, deadline: float, policy: FetchPolicy) -> http.client.HTTPConnection:
    """Connected to the first of the checked addresses that answers."""
    last: Optional[BaseException] = None
    for address in target.addresses:
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHttps(target, address, _remaining(deadline, url),
                                                            ssl.create_default_context(cafile=policy.cafile))
        else:
            conn = _PinnedHttp(target, address, _remaining(deadline, url))
        try:
            conn.connect()
            return conn
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            last = exc
    raise FetchError(f"cannot download {_short(url)}: cannot connect to {target.host}:{target.port} ({last})")


def _check_type(content_type: str, url: str, kind: Optional[str]) -> None:
    mime = content_type.split(";")[0].strip().lower()
    if kind is None or kind not in ACCEPTED_TYPES or mime in GENERIC_TYPES:
        return
    if not mime.startswith(ACCEPTED_TYPES[kind]):
        raise FetchError(f"{_short(url)}: the server answered Content-Type {mime!r}, which is not one of "
                         f"{kind} ({', '.join(ACCEPTED_TYPES[kind])}*)")


def _read(conn: http.client.HTTPConnection, response: http.client.HTTPResponse, url: str, policy: FetchPolicy,
          deadline: float) -> bytes:
    too_large = FetchError(f"{_short(url)} is larger than the limit of {policy.max_bytes} bytes", "media_too_large")
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > policy.max_bytes:
        raise too_large
    chunks, size = [], 0
    while True:
        if conn.sock is not None:
            conn.sock.settimeout(_remaining(deadline, url))
        chunk = response.read(CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.max_bytes:
            raise too_large
        chunks.append(chunk)


def _remaining(deadline: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"cannot download {_short(url)}: timed out")
    return left


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:100] + f"...({len(url)} chars)"


def _open_socket(sockaddr: tuple, family: int, timeout: float) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedHttp(http.client.HTTPConnection):
    """A connection to one checked address (no second name lookup); `Host` stays the URL's host name."""

    def __init__(self, target: _Target, address: tuple[int, tuple], timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.family, self.sockaddr = address

    def connect(self) -> None:
        self.sock = _open_socket(self.sockaddr, self.family, self.timeout)


class _PinnedHttps(http.client.HTTPSConnection):
    """The same over TLS: the certificate is checked against the URL's host name (and SNI names it)."""

    def __init__(self, target: _Target, address: tuple[int, tuple], timeout: float, context: ssl.SSLContext):
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self.family, self.sockaddr = address

    def connect(self) -> None:
        sock = _open_socket(self.sockaddr, self.family, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
