"""The web UI's HTTP side without a browser: gradio_client on the /chat endpoint (the embedded model, streamed),
--auth on the page and its API, uploads kept under the UI's own temp folder, the warning for an open host."""
from __future__ import annotations

import logging

import pytest

pytest.importorskip("gradio", reason="the web UI needs the webui extra: pip install 'swiftall[webui]'")
httpx = pytest.importorskip("httpx")

from swiftall.pipelines.webui import launch  # noqa: E402


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    runs = tmp_path_factory.mktemp("webui-runs")
    launched = launch(["--model", "smollm2-135m-instruct", "--port", "0", "--runs_dir", str(runs)], preload=False)
    yield launched
    launched.close()


@pytest.mark.slow
def test_chat_endpoint_streams_the_models_answer(page):
    """gradio_client gets the answer in growing pieces; the last is exactly the engine's own greedy answer."""
    from gradio_client import Client

    from swiftall.infer import RequestConfig

    client = Client(page.url, verbose=False)
    job = client.submit("Name one colour of the sky.", "", 24, 0.0, api_name="/chat")
    pieces = list(job)
    assert len(pieces) >= 2 and all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))
    engine = page.app.pool.get(*page.app.pool.default_model())
    direct = engine.infer("Name one colour of the sky.", RequestConfig(max_new_tokens=24, temperature=0.0)).text
    assert pieces[-1] == job.outputs()[-1] == direct and direct.strip()


def test_uploads_stay_under_the_ui_temp_folder(page):
    response = httpx.post(f"{page.url}/gradio_api/upload", files={"files": ("../../../escape.txt", b"data")})
    assert response.status_code == 200
    (stored,) = response.json()
    temp = page.app.manager.root / ".webui" / "tmp"
    assert stored.startswith(str(temp) + "/") and stored.endswith("/escape.txt")
    assert ".." not in stored


def test_only_the_chat_endpoint_is_public(page):
    from gradio_client import Client

    endpoints = Client(page.url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(endpoints) == ["/chat"]


def test_auth_refuses_page_and_api_without_the_password(tmp_path, caplog):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    with caplog.at_level(logging.WARNING):
        launched = launch(["--port", "0", "--runs_dir", str(tmp_path), "--auth", "ann:s3cret"], preload=False)
    try:
        for path in ("/config", "/gradio_api/info"):
            assert httpx.get(launched.url + path).status_code == 401
        assert httpx.post(f"{launched.url}/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 401
        with pytest.raises(AuthenticationError):
            Client(launched.url, verbose=False)
        with pytest.raises(Exception):
            Client(launched.url, auth=("ann", "wrong"), verbose=False)
        assert "/chat" in Client(launched.url, auth=("ann", "s3cret"), verbose=False).view_api(
            return_format="dict", print_info=False)["named_endpoints"]
    finally:
        launched.close()
    assert "without --auth" not in caplog.text


def test_open_host_without_auth_warns(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        launched = launch(["--host", "0.0.0.0", "--port", "0", "--runs_dir", str(tmp_path)], preload=False)
    launched.close()
    assert "serving the web UI on 0.0.0.0 without --auth" in caplog.text


def test_chinese_labels(tmp_path):
    launched = launch(["--port", "0", "--runs_dir", str(tmp_path), "--lang", "zh"], preload=False)
    try:
        config = httpx.get(f"{launched.url}/config").text
    finally:
        launched.close()
    assert all(label in config for label in ("对话", "训练", "运行", "导出", "部署"))
    assert "--learning_rate" in config  # flags keep their names
