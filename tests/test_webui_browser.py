"""The real page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium; nothing downloaded):
chat with the embedded model and watch the answer stream in; start a short SFT from the Train tab, close the page,
restart the web UI itself, reopen and find the run listed with its loss and plot; stop a run from the Runs tab and
check its processes are gone; export from the Export tab; bad input gives clear messages in the page. Screenshots
of each tab go to a temp folder named in a warning at the end of the run."""
from __future__ import annotations

import collections
import json
import os
import signal
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

from test_webui import wait_for

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.heavy,
    pytest.mark.skipif(not Path(CHROMIUM).exists() or not CHROMEDRIVER,
                       reason="no chromium/chromedriver: apt-get install -y chromium chromium-driver"),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
pytest.importorskip("gradio", reason="the web UI needs the webui extra")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

SHOTS = Path(tempfile.gettempdir()) / "swiftall-webui-screenshots"
ROWS = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(8)]


def _terminal_ctrl_c() -> None:
    """Ctrl-C as in a terminal: a shell's background job (`pytest ... &`) starts with SIGINT ignored, which the
    web UI would inherit and then never stop on Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class WebUI:
    """`swiftall webui` as a user starts it, in its own process; restart() stops it and starts it again."""

    def __init__(self, runs: Path):
        self.runs, self.proc, self.url = runs, None, None
        self.output: collections.deque = collections.deque(maxlen=300)

    def start(self) -> "WebUI":
        self.proc = subprocess.Popen([sys.executable, "-m", "swiftall", "webui", "--model", "smollm2-135m-instruct",
                                      "--port", "0", "--runs_dir", str(self.runs), "--max_new_tokens", "24",
                                      "--temperature", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                                     preexec_fn=_terminal_ctrl_c)
        for line in self.proc.stdout:
            if line.startswith("swiftall webui: http"):
                self.url = line.split(": ", 1)[1].strip()
                # keep reading its output: a full pipe would block the UI's next print (and its exit)
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise AssertionError(f"swiftall webui exited with {self.proc.wait()}")

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler prints where each thread is
            self.proc.wait(30)
            time.sleep(1)
            raise AssertionError("swiftall webui did not stop on Ctrl-C:\n" + "".join(self.output)[-8000:]) from None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    SHOTS.mkdir(parents=True, exist_ok=True)
    server = WebUI(runs).start()
    yield server
    server.stop()
    from swiftall.webui.runs import RunManager

    manager = RunManager(runs)
    for record in manager.all_records():  # nothing left running after the tests
        if manager.alive(record):
            manager.stop(record["id"])
    warnings.warn(f"web UI screenshots: {SHOTS}")


def browser(url: str, *extra: str):
    """Headless Debian Chromium on the page, once the page has rendered (`extra`: more Chromium flags)."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800", *extra):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.get(url)
    wait_for(lambda: driver.find_elements(By.ID, "chat-input"), timeout=90)
    return driver


@pytest.fixture
def page(ui):
    driver = browser(ui.url)
    yield driver
    driver.quit()


def tab(driver, name: str) -> None:
    driver.find_element(By.XPATH, f"//button[@role='tab'][contains(., '{name}')]").click()
    time.sleep(0.5)


def text_of(driver, elem_id: str) -> str:
    found = driver.find_elements(By.ID, elem_id)
    return found[0].text if found else ""


def fill(driver, elem_id: str, value: str) -> None:
    field = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} textarea, #{elem_id} input"))[0]
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(value)
    field.send_keys(Keys.TAB)


def start_training(driver, dataset: Path, name: str, max_steps: int, save_steps: int) -> None:
    tab(driver, "Train")
    fill(driver, "sft-dataset", str(dataset))
    for flag, value in (("max_steps", max_steps), ("save_steps", save_steps), ("logging_steps", 1),
                        ("per_device_train_batch_size", 2), ("max_length", 128), ("output_dir", name)):
        fill(driver, f"sft-{flag}", str(value))
    driver.find_element(By.ID, "train-start").click()
    wait_for(lambda: f"started {name}" in text_of(driver, "train-status"), timeout=60)


def run_row(driver, name: str) -> dict:
    """The Runs table's row of this run, {column: text} (empty when not listed)."""
    from swiftall.webui.runlist import COLUMNS

    rows = driver.execute_script("return Array.from(document.querySelectorAll('#runs-table [role=row].virtual-row'))"
                                 ".map(row => Array.from(row.querySelectorAll('[role=gridcell]'))"
                                 ".map(cell => cell.textContent.trim()))")
    found = [dict(zip(COLUMNS, row)) for row in rows if row and row[0] == name]
    return found[0] if found else {}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_page_is_usable_while_the_model_loads_in_its_own_process(tmp_path):
    """`swiftall webui --model M` as a user starts it: time to the URL line and to a usable page (the chat box) in
    Chromium, written to the screenshots folder. The model loads in a process of its own, started before the page
    imports Gradio: the page's process never imports torch (loading the model there took the interpreter from the
    server and doubled the time to a usable page), and stopping the page ends the model's process."""
    import psutil

    SHOTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    server = WebUI(tmp_path / "runs").start()
    try:
        url_s = time.perf_counter() - started
        (model,) = [p for p in psutil.Process(server.proc.pid).children() if "swiftall.webui.remote" in p.cmdline()]
        opened = time.perf_counter()
        driver = browser(server.url)
        usable_s = time.perf_counter() - opened
        try:
            wait_for(lambda: _maps_torch(model.pid), timeout=120)
            assert not _maps_torch(server.proc.pid), "torch was imported in the page's process"
        finally:
            driver.quit()
    finally:
        server.stop()
    model.wait(30)  # raises psutil.TimeoutExpired if the model's process outlives the page
    timing = {"url_printed_s": round(url_s, 2), "page_usable_after_get_s": round(usable_s, 2),
              "total_s": round(url_s + usable_s, 2), "load_average": os.getloadavg()[0]}
    (SHOTS / "page-load.json").write_text(json.dumps(timing))
    warnings.warn(f"web UI page load: {timing}")


def _maps_torch(pid: int) -> bool:
    """Whether the process has torch's shared library mapped (torch has been imported)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_chat_streams_the_answer(page):
    box = page.find_element(By.CSS_SELECTOR, "#chat-input textarea")
    box.send_keys("What is the capital of France?", Keys.ENTER)
    seen: list[str] = []
    changed, deadline = time.time(), time.time() + 180
    while time.time() < deadline:
        shown = text_of(page, "chat-bot-0")
        answer = shown.split("What is the capital of France?", 1)[-1].strip() if "France?" in shown else ""
        if answer and (not seen or answer != seen[-1]):
            seen.append(answer)
            changed = time.time()
        if seen and "processing" not in shown and time.time() - changed > 3:
            break  # the answer stopped growing and the page is no longer busy
        time.sleep(0.05)
    page.save_screenshot(str(SHOTS / "chat.png"))
    partial = [s for s in seen[:-1] if seen[-1].startswith(s)]
    assert len(partial) >= 2, f"the answer did not arrive in pieces: {seen}"
    assert "Paris" in seen[-1]


def test_training_run_outlives_the_page_and_the_ui(ui, page, dataset):
    start_training(page, dataset, "run-a", max_steps=4, save_steps=2)
    page.save_screenshot(str(SHOTS / "train.png"))
    page.close()                     # the page is closed ...
    ui.restart()                     # ... and the web UI itself restarted while the run goes on
    record = json.loads((ui.runs / ".webui" / "runs" / "run-a.json").read_text())
    again = browser(ui.url)
    try:
        tab(again, "Runs")
        row = wait_for(lambda: run_row(again, "run-a"), timeout=60, show=lambda: text_of(again, "runs-table"))
        assert row["command"] == "sft" and row["status"] in ("running", "finished"), row
        row = wait_for(lambda: (r := run_row(again, "run-a")).get("status") == "finished" and r, timeout=900,
                       show=lambda: run_row(again, "run-a"))
        assert row["step"] == "4" and re.fullmatch(r"\d+\.\d{4}", row["loss"]) and row["checkpoints"] == "2"
        wait_for(lambda: again.find_elements(By.CSS_SELECTOR, "#runs-loss canvas, #runs-loss svg"), timeout=30)
        again.save_screenshot(str(SHOTS / "runs.png"))
    finally:
        again.quit()
    assert record["pid"] and (ui.runs / "run-a" / "adapter_config.json").is_file()
    assert (ui.runs / "run-a" / "checkpoint-4").is_dir()


def test_stop_from_the_page_ends_every_process(ui, page, dataset):
    from swiftall.webui.runs import RunManager, _group_exists

    start_training(page, dataset, "run-long", max_steps=2000, save_steps=2000)
    tab(page, "Runs")
    wait_for(lambda: run_row(page, "run-long").get("status") == "running" and run_row(page, "run-long")["loss"],
             timeout=900, show=lambda: run_row(page, "run-long"))
    field = page.find_element(By.CSS_SELECTOR, "#runs-run input")
    field.send_keys(Keys.CONTROL, "a", Keys.DELETE)
    field.send_keys("run-long", Keys.ENTER)
    time.sleep(1)
    page.find_element(By.ID, "runs-stop").click()
    message = wait_for(lambda: re.search(r"run-long: stopped \((SIGINT[^)]*)\); every process of the run is gone, "
                                         r"(\d+) MB of memory freed", text_of(page, "runs-status")), timeout=120)
    assert int(message.group(2)) > 100      # the model's memory, held by the run until then
    record = RunManager(ui.runs).read("run-long")
    assert not _group_exists(record["pid"])
    wait_for(lambda: run_row(page, "run-long").get("status") == "stopped", timeout=30,
             show=lambda: run_row(page, "run-long"))


def test_export_from_the_page(ui, page):
    tab(page, "Export")
    fill(page, "export-adapters", str(ui.runs / "run-a"))
    page.find_element(By.ID, "export-start").click()
    wait_for(lambda: "started" in text_of(page, "export-status"), timeout=60)
    wait_for(lambda: "[finished]" in text_of(page, "export-log"), timeout=300)
    page.save_screenshot(str(SHOTS / "export.png"))
    assert (ui.runs / "run-a-merged" / "config.json").is_file()


def test_bad_input_gets_clear_messages_in_the_page(page, tmp_path):
    tab(page, "Train")
    fill(page, "sft-model", "/no/such/model")
    fill(page, "sft-dataset", "swiftall-demo")
    page.find_element(By.ID, "train-start").click()
    wait_for(lambda: "--model /no/such/model: no such file or folder" in text_of(page, "train-status"), timeout=30,
             show=lambda: text_of(page, "train-status"))
    bad_yaml = tmp_path / "run.yaml"
    bad_yaml.write_text("model: smollm2-135m-instruct\ndataset: [swiftall-demo]\nlerning_rate: 1e-4\n")
    page.find_element(By.CSS_SELECTOR, "#train-load-yaml input[type=file]").send_keys(str(bad_yaml))
    wait_for(lambda: "did you mean --learning_rate" in text_of(page, "train-status"), timeout=30,
             show=lambda: text_of(page, "train-status"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}\n')
    fill(page, "sft-model", "smollm2-135m-instruct")
    fill(page, "sft-dataset", str(broken))
    page.find_element(By.ID, "train-preview").click()
    wait_for(lambda: "broken.jsonl:1" in text_of(page, "train-output") + text_of(page, "train-status"), timeout=120,
             show=lambda: text_of(page, "train-output") + text_of(page, "train-status"))
    page.save_screenshot(str(SHOTS / "train-errors.png"))
    assert "Traceback" not in page.page_source
    tab(page, "Chat")
    fill(page, "chat-model", "/no/such/model")
    page.find_element(By.CSS_SELECTOR, "#chat-input textarea").send_keys("hello", Keys.ENTER)
    wait_for(lambda: "Error" in text_of(page, "chat-status") and "/no/such/model" in text_of(page, "chat-status"),
             timeout=60)
    assert "Traceback" not in page.page_source


def test_screenshots_of_every_tab_and_no_outside_request(ui, page):
    for name in ("Chat", "Train", "Runs", "Evaluate", "Export", "Deploy"):
        tab(page, name)
        page.save_screenshot(str(SHOTS / f"tab-{name.lower()}.png"))
    assert all((SHOTS / f"tab-{n}.png").stat().st_size > 10_000 for n in ("chat", "train", "runs", "deploy"))
    urls = [event["params"]["request"]["url"] for event in
            (json.loads(entry["message"])["message"] for entry in page.get_log("performance"))
            if event["method"] == "Network.requestWillBeSent"]
    assert urls and all(u.startswith((ui.url, "data:", "blob:")) for u in urls), \
        [u for u in urls if not u.startswith((ui.url, "data:", "blob:"))]


def test_image_upload_to_a_tiny_qwen2_vl(smol_dir, tmp_path):
    """A picture attached in the page is shown in the chat, stored under the UI's temp folder, and reaches the
    engine with an <image> tag in the message it was attached to."""
    from fixtures_mm import BUILDERS, write_image

    from swiftall.pipelines.webui import launch

    model = BUILDERS["qwen2_vl"](smol_dir, tmp_path / "qwen2_vl")
    picture = write_image(tmp_path / "cat.png", (56, 56))
    launched = launch(["--model", str(model), "--port", "0", "--runs_dir", str(tmp_path / "runs"),
                       "--max_new_tokens", "6", "--temperature", "0"], preload=False)
    pool, seen = launched.app.pool, []
    original = pool.stream

    def recording(model, adapters, messages, media, config):
        seen.append((messages, media))
        return original(model, adapters, messages, media, config)

    pool.stream = recording
    driver = browser(launched.url)
    try:
        driver.find_element(By.CSS_SELECTOR, "#chat-input input[type=file]").send_keys(str(picture))
        wait_for(lambda: "cat.png" in driver.find_element(By.ID, "chat-input").get_attribute("innerHTML"), timeout=30)
        driver.find_element(By.CSS_SELECTOR, "#chat-input textarea").send_keys("What is in this picture?", Keys.ENTER)
        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#chat-bot-0 img"), timeout=120)
        # the tiny random model's answer may be blank: wait for the page to finish, with no error shown
        wait_for(lambda: "processing" not in text_of(driver, "chat-bot-0") and len(seen) == 1, timeout=120)
        assert "Error" not in text_of(driver, "chat-status")
        driver.save_screenshot(str(SHOTS / "chat-image.png"))
    finally:
        driver.quit()
        launched.close()
    ((messages, media),) = seen
    assert messages == [{"role": "user", "content": "<image>What is in this picture?"}]
    (image,) = media["images"]
    assert image.startswith(str((tmp_path / "runs" / ".webui" / "tmp").resolve())) and image.endswith("cat.png")


def _click(root, xpath: str) -> None:
    wait_for(lambda: root.find_elements(By.XPATH, xpath), timeout=30)[0].click()


def test_webcam_snapshot_and_microphone_recording_reach_the_model(tmp_path):
    """Chromium's fake camera and microphone: a webcam snapshot (Camera) and a recording (the message box's
    microphone) are attached to the message and reach the engine as an image and an audio file, stored under the
    UI's temp folder, with their tags in the message."""
    from swiftall.pipelines.webui import launch

    launched = launch(["--port", "0", "--runs_dir", str(tmp_path / "runs")], preload=False)
    seen = []

    def recording(model, adapters, messages, media, config):
        seen.append((messages, media))
        yield "heard you"

    launched.app.pool.stream = recording
    driver = browser(launched.url, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    try:
        _click(driver, "//button[contains(., 'Camera')]")
        camera = driver.find_element(By.ID, "chat-webcam")
        _click(camera, ".//button[contains(., 'Click to Access Webcam')]")
        _click(camera, ".//button[@aria-label='capture photo']")
        box = driver.find_element(By.ID, "chat-input")
        wait_for(lambda: ".png" in box.get_attribute("innerHTML"), timeout=30)
        _click(box, ".//button[@data-testid='microphone-button']")
        _click(box, ".//button[@aria-label='Start recording']")
        time.sleep(2)
        _click(box, ".//button[@aria-label='Stop recording']")
        _click(box, ".//button[@aria-label='Attach audio']")
        time.sleep(1)
        box.find_element(By.CSS_SELECTOR, "textarea").send_keys("What do you see and hear?", Keys.ENTER)
        wait_for(lambda: "heard you" in text_of(driver, "chat-bot-0"), timeout=60, show=lambda: text_of(driver,
                                                                                                      "chat-status"))
        driver.save_screenshot(str(SHOTS / "chat-webcam-microphone.png"))
    finally:
        driver.quit()
        launched.close()
    ((messages, media),) = seen
    (image,), (audio,) = media["images"], media["audios"]
    temp = str((tmp_path / "runs" / ".webui" / "tmp").resolve())
    assert image.startswith(temp) and image.endswith(".png") and audio.startswith(temp)
    assert messages[-1]["content"] == "<image><audio>What do you see and hear?"
