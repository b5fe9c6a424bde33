"""Media URLs cannot reach private addresses: not by a redirect, not by DNS rebinding (a resolver that changes its
answer between lookups). Two local HTTP servers play the parts: a "public" one on 127.0.0.2 (the address check is
told that this one address is public) and an internal one on 127.0.0.1 that must never be reached. The fetcher is
tested alone, through the server (OpenAI's error shape, the engine never called), and through templates' loader."""
from __future__ import annotations

import http.server
import io
import ipaddress
import socket
import threading

import pytest
from serve_fakes import RecordingEngine

from swiftall.utils import fetch
from swiftall.utils.fetch import FetchError, FetchPolicy, fetch_url

httpx = pytest.importorskip("httpx")
PUBLIC_IP = "127.0.0.2"
STRICT = FetchPolicy(allow_private=False, timeout=5)


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(out, format="PNG")
    return out.getvalue()


class Recorder(http.server.BaseHTTPRequestHandler):
    """Routes: /img (a PNG), /html (text/html), /big (Content-Length over the limit), /redirect?to=URL (302),
    /slow (drips bytes). Every request is recorded in the server's `hits`."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.hits.append((self.headers.get("Host"), self.path))
        if self.path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", self.path.split("=", 1)[1])
            self.end_headers()
        elif self.path == "/html":
            self._send(b"<html>hi</html>", "text/html")
        elif self.path == "/big":
            self._send(b"x" * 5000, "image/png")
        elif self.path == "/chunked-big":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        else:
            self._send(png_bytes(), "image/png")

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def start(host: str):
    server = http.server.ThreadingHTTPServer((host, 0), Recorder)
    server.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers():
    try:
        public = start(PUBLIC_IP)
    except OSError:
        pytest.skip("127.0.0.2 is not routable here")
    internal = start("127.0.0.1")
    yield public, internal
    public.shutdown()
    internal.shutdown()


@pytest.fixture
def world(servers, monkeypatch):
    """DNS and the address check of a small world: public.test -> 127.0.0.2 (public); rebind.test -> 127.0.0.2 at
    its first two lookups, then 127.0.0.1; connections to 169.254.169.254 and 10.x are recorded (and fail)."""
    public, internal = servers
    for s in servers:
        s.hits.clear()
    real_check, real_resolve = fetch.is_public, socket.getaddrinfo
    lookups: list[str] = []
    connects: list[tuple] = []
    answers = {"public.test": [PUBLIC_IP], "rebind.test": [PUBLIC_IP, PUBLIC_IP, "127.0.0.1"]}

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        if host in answers:
            seen = lookups.count(host)
            address = answers[host][min(seen, len(answers[host])) - 1]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_resolve(host, port, *args, **kwargs)

    real_open = fetch._open_socket

    def open_socket(sockaddr, family, timeout):
        connects.append(sockaddr)
        if not sockaddr[0].startswith("127."):
            raise OSError("unreachable in tests")
        return real_open(sockaddr, family, timeout)

    monkeypatch.setattr(fetch, "is_public", lambda ip: ip == ipaddress.ip_address(PUBLIC_IP) or real_check(ip))
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(fetch, "_open_socket", open_socket)
    return {"public": public, "internal": internal, "lookups": lookups, "connects": connects,
            "pport": public.server_address[1], "iport": internal.server_address[1]}


def redirect_to(world, target: str) -> str:
    return f"http://public.test:{world['pport']}/redirect?to={target}"


def private_targets(world) -> list[str]:
    return [f"http://127.0.0.1:{world['iport']}/img", f"http://localhost:{world['iport']}/img",
            "http://169.254.169.254/latest/meta-data/", "http://10.0.0.8/img", f"http://[::1]:{world['iport']}/img",
            f"http://[::ffff:127.0.0.1]:{world['iport']}/img", f"file:///etc/passwd"]


def test_public_url_is_fetched_with_its_host_name(world):
    assert fetch_url(f"http://public.test:{world['pport']}/img", STRICT, "images") == png_bytes()
    assert world["public"].hits == [(f"public.test:{world['pport']}", "/img")]  # Host header kept
    assert world["lookups"] == ["public.test"]  # resolved once


@pytest.mark.parametrize("index", range(7))
def test_redirects_to_private_addresses_are_refused(world, index):
    target = private_targets(world)[index]
    with pytest.raises(FetchError) as e:
        fetch_url(redirect_to(world, target), STRICT, "images")
    assert e.value.code == "media_url_forbidden"
    assert "non-public address" in str(e.value) or "scheme 'file:'" in str(e.value)
    assert world["internal"].hits == []
    assert all(c[0].startswith(PUBLIC_IP) for c in world["connects"])  # nothing but the public server was dialled


def test_dns_rebinding_cannot_reach_the_private_address(world):
    """rebind.test answers public, then private: each fetch goes to the address that was checked; a redirect back
    to the same name is resolved again, checked again, and refused."""
    url = f"http://rebind.test:{world['pport']}/img"
    assert fetch_url(url, STRICT, "images") == png_bytes()
    with pytest.raises(FetchError) as e:
        fetch_url(f"http://rebind.test:{world['pport']}/redirect?to=http://rebind.test:{world['iport']}/img",
                  FetchPolicy(allow_private=False, timeout=5))
    assert e.value.code == "media_url_forbidden" and "127.0.0.1" in str(e.value)
    assert world["internal"].hits == []
    assert world["lookups"] == ["rebind.test"] * 3


def test_limits_type_and_redirect_count(world):
    base = f"http://public.test:{world['pport']}"
    with pytest.raises(FetchError, match="Content-Type 'text/html'"):
        fetch_url(base + "/html", STRICT, "images")
    for path in ("/big", "/chunked-big"):
        with pytest.raises(FetchError) as e:
            fetch_url(base + path, FetchPolicy(allow_private=False, max_bytes=1000), "images")
        assert e.value.code == "media_too_large"
    loop = base + "/redirect?to=" + base + "/redirect?to=" + base + "/img"
    assert fetch_url(loop, STRICT) == png_bytes()
    with pytest.raises(FetchError, match="more than 1 redirects"):
        fetch_url(loop, FetchPolicy(allow_private=False, max_redirects=1))


def test_private_addresses_allowed_when_the_policy_says_so(world):
    """infer and data loading (the user's own files) may name private hosts; redirects are still followed by hand."""
    url = redirect_to(world, f"http://127.0.0.1:{world['iport']}/img")
    assert fetch_url(url, FetchPolicy(allow_private=True), "images") == png_bytes()
    assert len(world["internal"].hits) == 1
    with pytest.raises(FetchError, match="scheme 'file:'"):
        fetch_url(redirect_to(world, "file:///etc/passwd"), FetchPolicy(allow_private=True))


def test_template_loader_uses_the_fetcher(world):
    from swiftall.templates.media import MediaError, load_image

    image = load_image(f"http://public.test:{world['pport']}/redirect?to=/img")
    assert image.size == (4, 4)
    with pytest.raises(MediaError, match="text/html"):
        load_image(f"http://public.test:{world['pport']}/html")


# ---- through the server ----------------------------------------------------------------------------------
@pytest.fixture
def api(world):
    from fastapi.testclient import TestClient

    from swiftall.serve.app import create_app
    from swiftall.serve.handlers import ServeSettings

    engine = RecordingEngine("a red square")
    app = create_app(engine, ServeSettings(served_model_name="m"))
    with TestClient(app) as client:
        yield client, engine


def ask(client, url):
    return client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]})


@pytest.mark.parametrize("index", range(7))
def test_server_refuses_redirects_to_private_addresses(world, api, index):
    client, engine = api
    r = ask(client, redirect_to(world, private_targets(world)[index]))
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "media_url_forbidden"
    assert error["param"] == "messages.0.content.1"
    assert engine.requests == [] and world["internal"].hits == []


def test_server_refuses_rebinding_and_passes_public_bytes(world, api):
    client, engine = api
    assert ask(client, f"http://rebind.test:{world['pport']}/img").status_code == 200
    assert engine.requests[0].images == [png_bytes()]  # the engine gets bytes, never a URL to fetch
    r = ask(client, f"http://rebind.test:{world['pport']}/redirect?to=http://rebind.test:{world['iport']}/img")
    assert r.status_code == 400 and r.json()["error"]["code"] == "media_url_forbidden"
    assert world["internal"].hits == [] and len(engine.requests) == 1


# ---- https: the checked address, the URL's name for SNI and the certificate -------------------------------
@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=public.test", "-addext", "subjectAltName=DNS:public.test"],
                   check=True, capture_output=True)
    try:
        server = http.server.ThreadingHTTPServer((PUBLIC_IP, 0), Recorder)
    except OSError:
        pytest.skip("127.0.0.2 is not routable here")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, str(cert)
    server.shutdown()


def test_https_checks_the_certificate_against_the_url_name(world, tls_server):
    server, cafile = tls_server
    port = server.server_address[1]
    policy = FetchPolicy(allow_private=False, timeout=5, cafile=cafile)
    assert fetch_url(f"https://public.test:{port}/img", policy, "images") == png_bytes()
    with pytest.raises(FetchError, match="certificate"):  # same address, a name the certificate does not carry
        fetch_url(f"https://rebind.test:{port}/img", policy, "images")
    with pytest.raises(FetchError, match="certificate"):  # not a certificate the system trusts
        fetch_url(f"https://public.test:{port}/img", FetchPolicy(allow_private=False, timeout=5), "images")
