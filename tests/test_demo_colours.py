"""The demo page colours a label's bar by what the label says (green positive, red negative, the
neutral accent otherwise), not by its rank: a predicted ``negative`` is red.

The colour rule (``labelTone`` in the page's script) runs in Node when it is installed; the
rendered colours are checked in the system's headless Chromium when it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import test_demo_page

from textcnn.serve import create_app

demo = test_demo_page.demo  # scripts/make_demo_screenshot.py: serving(app), open_browser()
browser = test_demo_page.browser  # the fixture: skips with the reason where no Chromium is
ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "textcnn" / "serve" / "static" / "index.html"
GREEN, RED, ACCENT = "rgb(34, 139, 34)", "rgb(200, 40, 40)", "rgb(37, 87, 167)"
INK = "rgb(29, 35, 42)"  # the text colour: a neutral predicted label's heading
LABELS = {"negative": "neg", "positive": "pos", "very negative": "neg", "very positive": "pos",
          "neutral": "neutral", "NEGATIVE": "neg", "spam": "neg", "ham": "pos", "yes": "pos",
          "no": "neg", "Sci/Tech": "neutral", "description": "neutral", "0": "neutral",
          "subjective": "neutral", "nonegative": "neutral"}


def tone_rule() -> str:
    """The page's ``TONE_WORDS`` and ``labelTone``, as JavaScript source."""
    script = PAGE.read_text(encoding="utf-8")
    found = re.search(r"const TONE_WORDS = .*?\nfunction labelTone\(.*?\n}\n", script, re.S)
    assert found, "the page has no labelTone(label) colour rule"
    return found.group(0)


def test_the_colour_rule_follows_the_label_name():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the page's colour rule runs in JavaScript")
    program = f"{tone_rule()}\nconsole.log(JSON.stringify({json.dumps(list(LABELS))}" \
              ".map(labelTone)));"
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, check=True)
    assert dict(zip(LABELS, json.loads(out.stdout))) == LABELS


class Fixed:
    """A model that answers ``scores`` (every one, whatever ``top_k``) for every text (the real
    one for everything else)."""

    def __init__(self, clf, scores):
        self.clf, self.scores = clf, scores

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def predict(self, texts, top_k=1):
        return [{"sentiment": self.scores} for _ in texts]


@pytest.mark.parametrize("labels, colours", [
    (["negative", "positive", "neutral"], [RED, GREEN, ACCENT]),
    (["positive", "neutral", "negative"], [GREEN, ACCENT, RED]),
    (["neutral", "negative", "positive"], [ACCENT, RED, GREEN]),
])
def test_a_predicted_label_is_drawn_in_its_own_colour(trained, browser, labels, colours):
    from selenium.webdriver.support.ui import WebDriverWait

    scores = [{"label": label, "score": p} for label, p in zip(labels, (0.7, 0.2, 0.1))]
    app = create_app(trained[1], classifier=Fixed(trained[0], scores))
    app.router.routes[:] = [r for r in app.router.routes  # bars only, no explanation
                            if getattr(r, "path", None) != "/v1/explain"]
    with demo.serving(app) as url:
        browser.get(url + "/")
        browser.execute_script("document.getElementById('text').value = 'a dull film';"
                               "document.getElementById('form').requestSubmit();")
        WebDriverWait(browser, 30).until(lambda d: d.execute_script(
            "return document.body.dataset.state") in ("done", "error"))
        shown = browser.execute_script(
            "return [...document.querySelectorAll('.bar')].map((li) => [li.dataset.label, "
            "getComputedStyle(li.querySelector('.fill')).backgroundColor]).concat([["
            "document.querySelector('h2 .label').textContent, "
            "getComputedStyle(document.querySelector('h2 .label')).color]]);")
    heading = INK if colours[0] == ACCENT else colours[0]
    assert shown == [*map(list, zip(labels, colours)), [labels[0], heading]]
