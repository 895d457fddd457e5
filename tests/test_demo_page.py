"""The demo page (``GET /``) in a real headless browser: the system's Chromium and chromedriver,
driven by Selenium (``.ci/run`` installs them). The page must show each head's label, its bars
and the explanation the server gives; the check must fail on a page that shows no label."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from textcnn.serve import create_app

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_demo_screenshot",
                                               ROOT / "scripts" / "make_demo_screenshot.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

TEXT = "a gorgeous , witty film about ennui — surprisingly 😀 moving"


def has_route(app, path: str) -> bool:
    return any(getattr(r, "path", None) == path for r in app.routes)


def stand_in_explanation(text: str, pred: dict, shape: str) -> dict:
    """One text's explanation in either shape the page reads (see ``perHead`` in the page):
    "per-head" {head: {label, score, exact, windows: [{span}], tokens: [{span, attribution}]}}
    or "heads" {text, tokens: [{start, end}], heads: {head: {..., token_attributions}}}."""
    words = [m.span() for m in re.finditer(r"\w+", text)]
    windows = [(0, 2, words[0][0], words[1][1], 1.25), (4, 5, *words[-1], -0.5)]
    attributions = [(-1) ** i * (i + 1) / 10 for i in range(len(words))]
    per_head = {}
    for head, top in pred.items():
        exp = {"label": top[0]["label"], "score": top[0]["score"], "exact": True}
        if shape == "per-head":
            per_head[head] = {**exp, "windows": [
                {"start": s, "end": e, "span": [a, b], "contribution": c}
                for s, e, a, b, c in windows],
                "tokens": [{"span": list(w), "attribution": x}
                           for w, x in zip(words, attributions)]}
        else:
            per_head[head] = {**exp, "token_attributions": attributions, "windows": [
                {"start": s, "end": e, "char_start": a, "char_end": b, "text": text[a:b],
                 "contribution": c} for s, e, a, b, c in windows]}
    if shape == "per-head":
        return per_head
    return {"text": text, "heads": per_head,
            "tokens": [{"text": text[a:b], "start": a, "end": b} for a, b in words]}


def add_stand_in_explain(app, shape: str = "per-head") -> None:
    """A stand-in ``POST /v1/explain`` (replacing the server's own, if any) answering
    ``{"explanations": [one per text]}`` in ``shape`` (:func:`stand_in_explanation`)."""
    clf = app.state.classifier
    without_explain(app)

    @app.post("/v1/explain")
    async def explain(body: dict):
        return {"explanations": [stand_in_explanation(t, p, shape)
                                 for t, p in zip(body["texts"], clf.predict(body["texts"]))]}


def explained_spans(row: dict, head: str) -> tuple[list, list]:
    """``(window spans, [(token span, attribution)])`` of one head in either shape."""
    exp = row["heads"][head] if "heads" in row else row[head]
    windows = [w.get("span") or [w["char_start"], w["char_end"]] for w in exp["windows"]]
    if "tokens" in exp:
        return windows, [(t["span"], t["attribution"]) for t in exp["tokens"]]
    return windows, [([t["start"], t["end"]], a)
                     for t, a in zip(row["tokens"], exp["token_attributions"])]


def without_explain(app):
    app.router.routes[:] = [r for r in app.router.routes
                            if getattr(r, "path", None) != "/v1/explain"]
    return app


@pytest.fixture(scope="module")
def browser():
    missing = demo.missing_programs()
    if missing and os.environ.get("TEXTCNN_REQUIRE_BROWSER") == "1":  # .ci/run installs both
        pytest.fail(f"TEXTCNN_REQUIRE_BROWSER=1 but {', '.join(missing)} is not on PATH")
    if missing:
        pytest.skip(f"needs the system's {' and '.join(missing)} (Debian: apt-get install "
                    "chromium chromium-driver)")
    driver = demo.open_browser()
    yield driver
    driver.quit()


def test_page_is_served_self_contained(trained):
    with TestClient(create_app(trained[1])) as client:
        r = client.get("/")
        spec = client.get("/openapi.json").json()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "/v1/classify" in page and "/v1/explain" in page and 'id="text"' in page
    # nothing fetched from elsewhere: no external script, style, font or image
    external = r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import"""
    assert not re.search(external, page)
    assert "/" not in spec["paths"]  # the page is not part of the API's schema


def test_missing_programs_names_the_browser_and_its_driver(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert demo.missing_programs() == [" or ".join(demo.BROWSERS), "chromedriver"]
    for name in ("chromium", "chromedriver"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert demo.missing_programs() == []


def test_page_is_package_data():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["textcnn.serve"]
    static = ROOT / "textcnn" / "serve" / "static"
    shipped = {p for pattern in package_data for p in static.parent.glob(pattern)}
    assert static / "index.html" in shipped


def check_page(trained, browser, app, tmp_path):
    """Classify TEXT in the page served by ``app``; check the label, the bars and the
    highlighted explanation against what the API answers."""
    clf, _ = trained
    with demo.serving(app) as url:
        shown = demo.classify_in_page(browser, url, TEXT)
        browser.save_screenshot(str(tmp_path / "demo.png"))
        labels = httpx.post(url + "/v1/classify", json={"texts": [TEXT], "top_k": 10}).json()
        explained = httpx.post(url + "/v1/explain", json={"texts": [TEXT]}).json()
    head = shown["heads"]["sentiment"]
    expected = labels["predictions"][0]["sentiment"]
    assert list(shown["heads"]) == list(clf.heads) == ["sentiment"]
    assert head["label"] == expected[0]["label"] in clf.heads["sentiment"]
    assert head["bars"] == [(s["label"], f"{100 * s['score']:.1f}%") for s in expected]
    windows, spans = explained_spans(explained["explanations"][0], "sentiment")
    chars = list(TEXT)  # the server's spans count characters (code points), as Python does
    assert head["windows"] == ["".join(chars[a:b]) for a, b in windows]
    assert head["windows"] and all(head["windows"])
    tokens = [("".join(chars[a:b]), attribution) for (a, b), attribution in spans]
    highlighted: dict = {}  # a token cut by a window's edge is drawn in pieces
    for piece, index, attribution in head["tokens"]:
        text, seen = highlighted.get(index, ("", attribution))
        assert seen == attribution
        highlighted[index] = (text + piece, attribution)
    assert [highlighted[i] for i in sorted(highlighted)] == tokens
    png = (tmp_path / "demo.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_browser_shows_label_bars_and_explanation(trained, browser, tmp_path):
    app = create_app(trained[1])
    if not has_route(app, "/v1/explain"):  # the server's own explanations when it has them
        add_stand_in_explain(app)
    check_page(trained, browser, app, tmp_path)


@pytest.mark.parametrize("shape", ["per-head", "heads"])
def test_page_reads_either_explanation_shape(trained, browser, tmp_path, shape):
    app = create_app(trained[1])
    add_stand_in_explain(app, shape)
    check_page(trained, browser, app, tmp_path)


def test_check_fails_when_the_page_shows_no_label(trained, browser):
    class NoAnswer:  # a model whose answers carry no head: the page has nothing to show
        def __init__(self, clf):
            self.clf = clf

        def __getattr__(self, name):
            return getattr(self.clf, name)

        def predict(self, texts, top_k=1):
            return [{} for _ in texts]

    app = create_app(trained[1], classifier=NoAnswer(trained[0]))
    with demo.serving(app) as url, pytest.raises(demo.PageError, match="no label"):
        demo.classify_in_page(browser, url, TEXT, timeout=15)


def test_page_without_explain_endpoint_still_shows_labels(trained, browser):
    app = without_explain(create_app(trained[1]))
    with demo.serving(app) as url:
        assert httpx.post(url + "/v1/explain", json={"texts": ["a"]}).status_code in (404, 405)
        shown = demo.classify_in_page(browser, url, "a dull , lifeless mess")
    head = shown["heads"]["sentiment"]
    assert head["label"] in trained[0].heads["sentiment"] and head["windows"] == []
    assert any("No explanation" in note for note in shown["notes"])
