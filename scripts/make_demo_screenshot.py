"""Drive the demo page (``GET /`` of ``textcnn serve``) in headless Chromium; save a screenshot.

    python scripts/make_demo_screenshot.py runs/sst2 --output docs/demo.png

starts the server on 127.0.0.1 (a free port, in this process), opens the page in the system's
Chromium through its chromedriver (Debian: ``apt-get install chromium chromium-driver``; Selenium
is in the ``dev`` extra; nothing is downloaded), types the sentence, clicks Classify, waits for
the answer and saves the screenshot. ``tests/test_demo_page.py`` uses the same functions
(``serving``, ``open_browser``, ``classify_in_page``) and checks what the page shows.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

TEXT = "a gorgeous, witty and moving film, though the ending drags"


class PageError(AssertionError):
    """The page did not show what it must (no label, an error, no answer in time)."""


@contextlib.contextmanager
def serving(app, timeout: float = 30.0):
    """Run ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"the server did not start on 127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)


def missing_programs() -> list[str]:
    """The system programs :func:`open_browser` needs that are not on PATH (empty: none)."""
    return [" or ".join(names) for names in (BROWSERS, DRIVERS)
            if not any(shutil.which(name) for name in names)]


def _system_program(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    raise FileNotFoundError(f"none of {', '.join(names)} is on PATH: install Chromium and its "
                            "driver from the system's package manager (Debian: apt-get install "
                            "chromium chromium-driver; .ci/run does)")


def open_browser(width: int = 1000, height: int = 760):
    """Headless Chromium driven by Selenium through the system's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _system_program(*BROWSERS)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--hide-scrollbars", "--force-device-scale-factor=1",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    service = Service(executable_path=_system_program(*DRIVERS))
    return webdriver.Chrome(options=options, service=service)


def _text_of(node) -> str:
    return node.get_attribute("textContent")


def read_page(driver) -> dict:
    """What the rendered page shows: per head its label, bars (label, percentage), highlighted
    token pieces (text, token index, attribution) and the windows' text."""
    from selenium.webdriver.common.by import By

    shown: dict = {"heads": {}, "status": _text_of(driver.find_element(By.ID, "status")),
                   "notes": [_text_of(n) for n in driver.find_elements(By.CSS_SELECTOR, ".note")]}
    for box in driver.find_elements(By.CSS_SELECTOR, ".head"):
        labels = box.find_elements(By.CSS_SELECTOR, "h2 .label")
        shown["heads"][box.get_attribute("data-head")] = {
            "label": _text_of(labels[0]) if labels else "",
            "bars": [(li.get_attribute("data-label"), _text_of(li.find_element(By.CSS_SELECTOR,
                                                                               ".pct")))
                     for li in box.find_elements(By.CSS_SELECTOR, ".bar")],
            "tokens": [(_text_of(t), int(t.get_attribute("data-token")),
                        float(t.get_attribute("data-attribution")))
                       for t in box.find_elements(By.CSS_SELECTOR, ".highlighted .tok")
                       if t.get_attribute("data-attribution") is not None],
            "windows": [_text_of(w.find_element(By.CSS_SELECTOR, ".snippet"))
                        for w in box.find_elements(By.CSS_SELECTOR, ".windows .window")],
        }
    return shown


def classify_in_page(driver, url: str, text: str, timeout: float = 30.0) -> dict:
    """Open the page, type ``text``, click Classify and return :func:`read_page`'s answer.

    Raises :class:`PageError` when no answer comes in ``timeout`` seconds, the page reports an
    error, or any head shows no label.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url + "/")
    box = driver.find_element(By.ID, "text")
    # the text is set through the page, not typed: chromedriver refuses keystrokes of characters
    # outside the Basic Multilingual Plane (emoji), and typing is not what is being tested
    driver.execute_script("arguments[0].value = arguments[1];"
                          "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                          box, text)
    driver.find_element(By.ID, "classify").click()
    try:
        WebDriverWait(driver, timeout).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
            in ("done", "error"))
    except TimeoutException:
        raise PageError(f"the page gave no answer in {timeout:.0f} s") from None
    shown = read_page(driver)
    if not shown["heads"] or not all(h["label"] for h in shown["heads"].values()):
        raise PageError(f"the page shows no label (status: {shown['status']!r})")
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="a text model folder (e.g. runs/sst2)")
    parser.add_argument("--output", default="docs/demo.png")
    parser.add_argument("--text", default=TEXT)
    args = parser.parse_args(argv)
    from textcnn.serve import create_app

    driver = open_browser()
    try:
        with serving(create_app(args.model_dir)) as url:
            shown = classify_in_page(driver, url, args.text)
            time.sleep(0.3)  # let the bars' layout settle before the picture
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(args.output)
    finally:
        driver.quit()
    for head, seen in shown["heads"].items():
        print(f"{head}: {seen['label']}; windows {seen['windows']}")
    for note in shown["notes"]:
        print(f"warning: {note}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
