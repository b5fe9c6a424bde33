"""The web UI's HTTP side without a browser: gradio_client on the /chat endpoint (the embedded model, streamed),
--auth on the page and its API, uploads kept under the UI's own temp folder, the warning for an open host."""
from __future__ import annotations

import json
import logging
from pathlib import Path

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


def _chat_tab(page):
    import gradio as gr

    from swiftall.webui.i18n import translator
    from swiftall.webui.tabs.chat import ChatTab

    return ChatTab(gr, page.app.pool, translator("en"), [], {})


def _say(tab, state, text, compare, model="smollm2-135m-instruct"):
    """The Chat tab's answer to one message: (the three chat panes as shown, the status line)."""
    *outputs, = tab.respond({"text": text, "files": []}, state, model, "", "", 0.0, 1.0, 12, compare)
    last = outputs[-1]
    panes = [(u["value"], u["visible"]) if isinstance(u, dict) else (u, None) for u in last[:3]]
    return panes, last[-1]


@pytest.mark.slow
def test_side_by_side_models_answer_the_same_message(page, tiny_dir):
    """Base model and a second model (one line of the Compare field) each answer the same message in their own
    pane, each with its own greedy answer; the next message continues both conversations."""
    from swiftall.infer import RequestConfig

    tab = _chat_tab(page)
    state = tab.reset()[3]
    panes, status = _say(tab, state, "What is the capital of France?", str(tiny_dir))
    assert status == "" and [visible for _, visible in panes] == [True, True, False]
    answers = []
    for shown, _ in panes[:2]:
        assert shown[0] == {"role": "user", "content": "What is the capital of France?"}
        assert shown[1]["role"] == "assistant"
        answers.append(shown[1]["content"])
    config = RequestConfig(max_new_tokens=12, temperature=0.0)
    for answer, (model, adapters) in zip(answers, [("smollm2-135m-instruct", []), (str(tiny_dir), [])]):
        direct = page.app.pool.get(model, adapters).infer("What is the capital of France?", config).text
        assert answer == direct
    assert "Paris" in answers[0] and answers[1] != answers[0]
    panes, status = _say(tab, state, "And of Italy?", str(tiny_dir))
    assert [len(shown) for shown, _ in panes[:2]] == [4, 4] and status == ""


def test_compare_field_errors_name_the_field(page):
    tab = _chat_tab(page)
    state = tab.reset()[3]
    _, status = _say(tab, state, "hi", "smollm2-135m-instruct 'unclosed")
    assert "Compare line 1" in status and "quote" in status
    _, status = _say(tab, state, "hi", "a\nb\nc")
    assert "Compare: 3 lines, at most 2" in status
    *_, last = tab.respond({"text": "hi", "files": []}, state, "smollm2-135m-instruct", "", "", 0.0, 1.0, -3, "")
    assert last[-1] == "**Error:** --max_new_tokens: expected a whole number of at least 1, got -3"
    _, status = _say(tab, state, "hi", "", model="/no/such/model")
    assert "--model /no/such/model" in status and "Traceback" not in status


@pytest.mark.slow
def test_compare_model_that_cannot_load_is_named(page):
    tab = _chat_tab(page)
    panes, status = _say(tab, tab.reset()[3], "hi", "/no/such/model")
    assert status.startswith("**Error (Compare line 1 (/no/such/model)):**") and "no such" in status
    assert panes[0][0][-1]["role"] == "assistant" and panes[0][0][-1]["content"]  # the main model did answer


def test_webcam_snapshot_joins_the_message(tmp_path):
    from swiftall.webui.tabs.chat import attach

    shot = str(tmp_path / "webcam.png")
    message = attach(shot, {"text": "What do you see?", "files": [{"path": "a.png"}]})
    assert message == {"text": "What do you see?", "files": ["a.png", shot]}
    assert attach(shot, message) == message and attach(None, None) == {"text": "", "files": []}


@pytest.mark.slow
def test_command_line_model_loads_in_its_own_process(tmp_path):
    """`--model` starts loading in a child process before the page is up; the chat's engine is that process (its
    answer is the model's greedy answer, streamed or not); closing the page ends it."""
    from swiftall.infer import RequestConfig
    from swiftall.webui.remote import RemoteEngine

    launched = launch(["--model", "smollm2-135m-instruct", "--port", "0", "--runs_dir", str(tmp_path)])
    try:
        pool = launched.app.pool
        (engine,) = pool._engines.values()  # started by launch, before anything asked for it
        assert isinstance(engine, RemoteEngine) and engine._proc.poll() is None
        assert pool.get(*pool.default_model()) is engine
        config = RequestConfig(max_new_tokens=12, temperature=0.0)
        answer = engine.infer("What is the capital of France?", config).text
        assert "Paris" in answer
        assert "".join(engine.stream("What is the capital of France?", config)) == answer
    finally:
        launched.close()
    assert engine._proc.poll() is not None


def test_streamed_text_is_coalesced():
    """Pieces arriving faster than UPDATE_EVERY_S reach the page joined, none lost; the first one is not held."""
    import time

    from swiftall.webui.tabs.chat import coalesced

    def pieces():
        time.sleep(0.06)  # the prompt's prefill
        for i in range(20):
            yield f"{i} "
            time.sleep(0.01)

    updates = list(coalesced(pieces(), every_s=0.05))
    assert "".join(updates) == "".join(f"{i} " for i in range(20))
    assert updates[0] == "0 " and 3 <= len(updates) <= 8


def _train_tab(tmp_path):
    import gradio as gr

    from swiftall.webui.i18n import translator
    from swiftall.webui.runs import RunManager
    from swiftall.webui.tabs.train import TrainTab

    tab = TrainTab(gr, RunManager(tmp_path / "runs"), translator("en"), {}, None)
    with gr.Blocks():
        tab.build()
    return tab


def _train_values(tab, method, **flags):
    """The Train tab's inputs as a user leaves them: each field's initial value, `flags` typed over them."""
    values = [method, None]
    for form in (tab.form, tab.rlhf):
        values += [flags.get(name, form.components[name].value) for name in form.names]
        values.append(flags.get(f"{form.cls.command}_extra", ""))
    return values


def test_train_tab_offers_every_rlhf_method_as_an_rlhf_command_line(tmp_path, write_jsonl):
    from swiftall.config.rlhf import RLHF_TYPES

    tab = _train_tab(tmp_path)
    data = write_jsonl([{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}],
                        "rejected_response": "Go away."}])
    assert tab.method.choices == [(m, m) for m in ("sft", *RLHF_TYPES)]
    needs = {"grpo": {"reward_funcs": "accuracy"}, "ppo": {"reward_model": "smollm2-135m-instruct"},
             "gkd": {"teacher_model": "smollm2-135m-instruct"}}
    for method in RLHF_TYPES:
        values = _train_values(tab, method, model="smollm2-135m-instruct", dataset=str(data), **needs.get(method, {}))
        status, command = tab.on_command(*values)
        assert status == "" and command.startswith(f"swiftall rlhf --rlhf_type {method} "), (method, status)
    sft = tab.on_command(*_train_values(tab, "sft", model="smollm2-135m-instruct", dataset=str(data)))[1]
    assert sft.startswith("swiftall sft ") and "rlhf_type" not in sft
    for method, field in (("grpo", "--reward_funcs"), ("gkd", "--teacher_model")):
        status, _ = tab.on_start(*_train_values(tab, method, model="smollm2-135m-instruct", dataset=str(data)))
        assert status.startswith("**Error:**") and field in status, status
    status, _ = tab.on_start(*_train_values(tab, "dpo", model="smollm2-135m-instruct", dataset=str(data),
                                            beta="lots"))
    assert status.startswith("**Error:**") and "--beta" in status, status


@pytest.mark.slow
def test_train_tab_starts_a_real_dpo_run(tmp_path, tiny_dir, write_jsonl):
    """Start with method dpo: a `swiftall rlhf --rlhf_type dpo` process of its own, which trains and saves."""
    from test_webui import wait_for

    tab = _train_tab(tmp_path)
    rows = [{"messages": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": f"{i}."}],
             "rejected_response": f"No {i}."} for i in range(4)]
    values = _train_values(tab, "dpo", model=str(tiny_dir), dataset=str(write_jsonl(rows)), max_steps=2,
                           save_steps=2, logging_steps=1, per_device_train_batch_size=2, max_length=64,
                           output_dir="dpo-run")
    status, command = tab.on_start(*values)
    assert status.startswith("started **dpo-run**"), status
    record = tab.manager.read("dpo-run")
    assert record["argv"][1:6] == ["-m", "swiftall", "rlhf", "--rlhf_type", "dpo"] and record["pid"]
    wait_for(lambda: tab.manager.status(tab.manager.read("dpo-run")) != "running", timeout=600)
    record = tab.manager.read("dpo-run")
    assert tab.manager.status(record) == "finished", Path(record["log"]).read_text()[-2000:]
    folder = tmp_path / "runs" / "dpo-run"
    assert (folder / "adapter_config.json").is_file()
    logged = [json.loads(line) for line in (folder / "logging.jsonl").read_text().splitlines()]
    assert any("loss" in row for row in logged)


def _deploy_tab(tmp_path):
    import gradio as gr

    from swiftall.webui.i18n import translator
    from swiftall.webui.runs import RunManager
    from swiftall.webui.tabs.deploy import deploy_tab

    tab = deploy_tab(gr, RunManager(tmp_path / "runs"), translator("en"), {})
    with gr.Blocks():
        tab.build()
    return tab


def _form_values(form, **flags):
    return [flags.get(name, form.components[name].value) for name in form.names] + [flags.get("extra", "")]


@pytest.mark.slow
def test_deploy_tab_starts_a_server_shows_its_url_and_stops_it(tmp_path, tiny_dir):
    """Start: a `swiftall deploy` process; the tab shows its URL as answering and a curl example that works; Stop
    ends every process of it."""
    from test_webui import wait_for

    from swiftall.webui.runs import _group_exists

    tab = _deploy_tab(tmp_path)
    status, run_id = tab.on_start(*_form_values(tab.form, model=str(tiny_dir), port=0, max_new_tokens=4))
    assert status.startswith(f"started **{run_id}**"), status
    record = tab.manager.read(run_id)
    assert record["argv"][1:4] == ["-m", "swiftall", "deploy"]
    log, url, curl = wait_for(lambda: (shown := tab.follow(run_id)) and "(answering as model " in shown[1] and shown,
                              timeout=300, show=lambda: tab.follow(run_id))
    base = url.split("**")[1].removesuffix("/v1")
    assert log.startswith("[running]") and base.startswith("http://127.0.0.1:") and not base.endswith(":0")
    assert curl.startswith(f"curl {base}/v1/chat/completions")
    body = json.loads(curl.split("-d ", 1)[1].strip("'"))
    reply = httpx.post(f"{base}/v1/chat/completions", json={**body, "max_tokens": 4}, timeout=120)
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["role"] == "assistant"
    assert "every process of the run is gone" in tab.on_stop(run_id)
    assert not _group_exists(record["pid"])
    assert tab.follow(run_id)[1].endswith("(stopped)")


def test_deploy_tab_refuses_a_port_in_use(tmp_path):
    import socket

    tab = _deploy_tab(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status, run_id = tab.on_start(*_form_values(tab.form, model="smollm2-135m-instruct", port=port))
    assert run_id is None and status.startswith(f"**Error:** --port {port} on 127.0.0.1:"), status
    status, run_id = tab.on_start(*_form_values(tab.form, model="/no/such/model", port=0))
    assert run_id is None and "--model /no/such/model" in status
    assert tab.manager.all_records() == []
