"""The HTTP service: endpoints, bad input, limits, micro-batching, access log, shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from textcnn.classifier import TextClassifier  # noqa: E402
from textcnn.cli import main  # noqa: E402
from textcnn.models import build_model  # noqa: E402
from textcnn.serve import MicroBatcher, ServeSettings, ShuttingDown, create_app  # noqa: E402

TEXTS = ["a gorgeous, witty film", "", "dull", "a b", "not good at all , and far too long",
         "the plot is thin but the actors carry it with real charm and wit " * 3]


@pytest.fixture(scope="module")
def client(trained):
    _, folder = trained
    with TestClient(create_app(folder)) as c:
        yield c


def post(c, body: bytes, content_type: str = "application/json"):
    return c.post("/v1/classify", content=body, headers={"content-type": content_type})


# -- endpoints ---------------------------------------------------------------------------------
def test_classify_matches_predict(client, trained):
    clf = TextClassifier.from_pretrained(trained[1])  # as the server loads it (same backend)
    for top_k in (1, 2, 5):
        r = client.post("/v1/classify", json={"texts": TEXTS, "top_k": top_k})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.json() == {"predictions": clf.predict(TEXTS, top_k=top_k)}
    preds = client.post("/v1/classify", json={"texts": ["a b", "c"]}).json()["predictions"]
    assert [len(p["sentiment"]) for p in preds] == [1, 1]  # top_k defaults to 1
    assert preds[0]["sentiment"][0]["label"] in clf.heads["sentiment"]


def test_healthz_model_and_openapi(client, trained):
    clf, _ = trained
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["heads"] == clf.heads and info["backend"] == "folded"  # what "auto" picked
    assert info["model_version"] == info["textcnn_version"] == "0.1.0"
    assert info["limits"] == {"max_body_bytes": 1 << 20, "max_texts": 256, "max_chars": 20000}
    assert info["max_length"] == 64 and info["model"]["kernel_sizes"] == [3, 4, 5]
    spec = client.get("/openapi.json").json()
    assert {"/v1/classify", "/healthz", "/v1/model"} <= set(spec["paths"])
    op = spec["paths"]["/v1/classify"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]["properties"]["texts"]
    assert body["minItems"] == 1 and body["maxItems"] == 256
    assert body["items"]["maxLength"] == 20000
    assert {"200", "400", "413", "415", "422"} <= set(op["responses"])


# -- bad input: 4xx JSON naming the field, never a 500 -----------------------------------------
BAD = [
    (b'{"texts": ["a"', 422, "body", "json_invalid"),
    (b"not json", 422, "body", "json_invalid"),
    (b"", 422, "body", None),
    (b"[]", 422, "body", "model_type"),
    (b"null", 422, "body", "model_type"),
    (b"{}", 422, "texts", "missing"),
    (b'{"texts": []}', 422, "texts", "empty_texts"),
    (b'{"texts": "a film"}', 422, "texts", "list_type"),
    (b'{"texts": {"a": 1}}', 422, "texts", "list_type"),
    (b'{"texts": ["ok", 3]}', 422, "texts[1]", "string_type"),
    (b'{"texts": ["ok", null]}', 422, "texts[1]", "string_type"),
    (b'{"texts": [["nested"]]}', 422, "texts[0]", "string_type"),
    (b'{"texts": ["ok", "\\ud800"]}', 422, "texts[1]", "value_error"),  # the text rule
    (b'{"texts": ["a"], "top_k": 0}', 422, "top_k", "greater_than_equal"),
    (b'{"texts": ["a"], "top_k": "2"}', 422, "top_k", None),
    (b'{"texts": ["a"], "top_k": true}', 422, "top_k", None),
    (b'{"texts": ["a"], "top_k": 1.5}', 422, "top_k", None),
    (b'{"texts": ["a"], "heads": "x"}', 422, "heads", "extra_forbidden"),
    (b'{"texts": ["a"], "head": "x"}', 422, "head", "literal_error"),
    (b'{"texts": ["\xff\xfe"]}', 400, "body", "utf8_invalid"),
    (b"\xc3\x28", 400, "body", "utf8_invalid"),
]


@pytest.mark.parametrize("body,status,field,kind", BAD)
def test_bad_input_is_4xx_json_naming_the_field(client, body, status, field, kind):
    r = post(client, body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"][0]
    assert detail["field"] == field and detail["msg"]
    if kind:
        assert detail["type"] == kind


def test_wrong_content_type_and_method(client):
    r = post(client, b'{"texts": ["a gorgeous film"]}', "text/plain")
    assert r.status_code == 415 and r.json()["detail"][0]["field"] == "headers.content-type"
    assert post(client, b'{"texts": ["a"]}', "application/json; charset=utf-8").status_code == 200
    assert client.post("/v1/classify", content=b'{"texts": ["a"]}').status_code == 200
    assert client.get("/v1/classify").status_code == 405
    assert client.post("/v1/model", json={}).status_code == 405


def test_default_limits(client):
    r = client.post("/v1/classify", json={"texts": ["a"] * 257})
    assert r.status_code == 422
    d = r.json()["detail"][0]
    assert (d["field"], d["type"], d["limit"]) == (
        "texts", "too_many_texts", {"name": "max_texts", "value": 256})
    assert client.post("/v1/classify", json={"texts": ["a"] * 256}).status_code == 200
    r = client.post("/v1/classify", json={"texts": ["ok", "x" * 20_001]})
    d = r.json()["detail"][0]
    assert r.status_code == 422 and d["field"] == "texts[1]"
    assert d["limit"] == {"name": "max_chars", "value": 20_000} and d["type"] == "text_too_long"
    r = client.post("/v1/classify", json={"texts": ["word " * 3999]})  # 19,995 chars: fine
    assert r.status_code == 200
    big = json.dumps({"texts": ["x" * 20_000] * 53}).encode()  # > 1 MiB, every text in limits
    r = post(client, big)
    assert r.status_code == 413
    assert r.json()["detail"][0]["limit"] == {"name": "max_body_bytes", "value": 1 << 20}


def test_configured_limits_also_without_content_length(trained):
    clf, folder = trained
    settings = ServeSettings(max_texts=3, max_chars=10, max_body_bytes=200)
    with TestClient(create_app(folder, settings, classifier=clf)) as c:
        assert c.post("/v1/classify", json={"texts": ["a"] * 4}).json()["detail"][0][
            "limit"] == {"name": "max_texts", "value": 3}
        assert c.post("/v1/classify", json={"texts": ["x" * 11]}).status_code == 422
        assert c.post("/v1/classify", json={"texts": ["x" * 10] * 3}).status_code == 200

        def chunks():  # streamed: no content-length header, the limit still holds
            for _ in range(30):
                yield b"          "

        r = c.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    with pytest.raises(Exception, match="max_batch_size"):
        create_app(folder, ServeSettings(max_batch_size=0), classifier=clf)


# -- micro-batching ----------------------------------------------------------------------------
def fire(c, requests: list[dict], workers: int = 16) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda body: c.post("/v1/classify", json=body), requests))


def test_batched_serving_equals_unbatched(trained, caplog):
    clf, folder = trained
    texts = TEXTS + [f"film number {i} is {'good' if i % 2 else 'bad'} and long " * (i % 5)
                     for i in range(40)]
    requests = [{"texts": [t]} for t in texts]
    requests += [{"texts": texts[i:i + 3], "top_k": 2} for i in range(0, 12, 3)]
    results = {}
    for mbs, wait in ((64, 50.0), (1, 0.0)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="textcnn.access"), \
                TestClient(create_app(folder, ServeSettings(max_batch_size=mbs, max_wait_ms=wait),
                                      classifier=clf)) as c:
            responses = fire(c, requests)
            stats = c.app.state.batcher
            assert stats.batched_texts == sum(len(r["texts"]) for r in requests)
        assert all(r.status_code == 200 for r in responses)
        results[mbs] = [r.json()["predictions"] for r in responses]
        sizes = [json.loads(rec.getMessage())["batch_size"] for rec in caplog.records]
        if mbs == 64:
            assert stats.batches < len(requests) and max(sizes) > 3  # really batched
            assert max(sizes) <= 64
        else:
            assert stats.batches == len(requests)
            assert sizes.count(1) == len(texts) and sizes.count(3) == 4  # one request per pass
    assert results[64] == results[1]  # bit-identical, not just close
    whole = clf.predict(texts, top_k=1)
    assert [r[0] for r in results[64][:len(texts)]] == whole
    for body, got in zip(requests[len(texts):], results[64][len(texts):]):
        assert got == clf.predict(body["texts"], top_k=2)


def test_batcher_drains_on_stop_and_isolates_failures():
    seen = []

    def predict(texts, top_k):
        seen.append(len(texts))
        if "boom" in texts:
            raise RuntimeError("boom")
        time.sleep(0.01)
        return [{"h": [{"label": t, "score": 1.0}] * top_k} for t in texts]

    async def scenario():
        batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=20)
        await batcher.start()
        jobs = [asyncio.ensure_future(batcher.submit([f"t{i}"], top_k=1 + i % 2))
                for i in range(9)]
        bad = asyncio.ensure_future(batcher.submit(["boom"]))
        big = asyncio.ensure_future(batcher.submit([f"b{i}" for i in range(6)]))  # > max: alone
        await asyncio.sleep(0)
        await batcher.stop()  # everything queued is still answered
        done = await asyncio.gather(*jobs, bad, big, return_exceptions=True)
        with pytest.raises(ShuttingDown):
            await batcher.submit(["late"])
        return done

    done = asyncio.run(scenario())
    for i, (rows, size) in enumerate(done[:9]):
        assert rows == [{"h": [{"label": f"t{i}", "score": 1.0}] * (1 + i % 2)}]
        assert 1 <= size <= 4
    assert isinstance(done[9], RuntimeError)
    assert len(done[10][0]) == 6 and done[10][1] == 6
    assert max(seen) == 6 and sorted(seen)[-2] <= 4


# -- access log, multi-task, onnx backend ------------------------------------------------------
def test_access_log_one_json_line_per_request(client, caplog):
    with caplog.at_level(logging.INFO, logger="textcnn.access"):
        client.post("/v1/classify", json={"texts": ["a", "b"]})
        post(client, b"{")
        client.get("/healthz")
    rows = [json.loads(r.getMessage()) for r in caplog.records if r.name == "textcnn.access"]
    assert [(r["method"], r["path"], r["status"], r["batch_size"]) for r in rows] == [
        ("POST", "/v1/classify", 200, 2), ("POST", "/v1/classify", 422, None),
        ("GET", "/healthz", 200, None)]
    assert all(isinstance(r["latency_ms"], float) and r["latency_ms"] >= 0 for r in rows)


@pytest.fixture(scope="module")
def multitask_folder(trained, tmp_path_factory):
    """A two-head model (random weights on the trained tokenizer) saved as a model folder."""
    import torch

    clf, _ = trained
    torch.manual_seed(0)
    heads = {"sentiment": ["negative", "positive"], "topic": ["film", "food", "sport"]}
    model = build_model(clf.config.model, clf.tokenizer.get_vocab_size(),
                        {h: len(v) for h, v in heads.items()}).eval()
    folder = tmp_path_factory.mktemp("multitask") / "model"
    TextClassifier(model, clf.tokenizer, clf.config, heads).save(folder)
    return folder


@pytest.mark.parametrize("backend", ["torch", "folded", "onnx", "auto"])
def test_multitask_model_serves_every_head(multitask_folder, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    ref = TextClassifier.from_pretrained(multitask_folder, backend="torch")
    with TestClient(create_app(multitask_folder, ServeSettings(backend=backend))) as c:
        info = c.get("/v1/model").json()
        assert info["heads"] == ref.heads
        assert info["backend"] == ("folded" if backend == "auto" else backend)
        preds = c.post("/v1/classify", json={"texts": TEXTS, "top_k": 3}).json()["predictions"]
    want = ref.predict(TEXTS, top_k=3)
    for got, exp in zip(preds, want):
        assert set(got) == {"sentiment", "topic"} and len(got["topic"]) == 3
        for head in exp:
            assert [x["label"] for x in got[head]] == [x["label"] for x in exp[head]]
            assert [x["score"] for x in got[head]] == pytest.approx(
                [x["score"] for x in exp[head]], abs=2e-6)


# -- graceful shutdown: in-flight requests finish ----------------------------------------------
class SlowClassifier:
    """Delegates to a classifier, with a slow forward pass."""

    def __init__(self, clf, delay: float):
        self.clf, self.delay = clf, delay

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def predict(self, texts, top_k=1):
        time.sleep(self.delay)
        return self.clf.predict(texts, top_k=top_k)


def test_graceful_shutdown_finishes_in_flight_requests(trained):
    import uvicorn

    clf, folder = trained
    app = create_app(folder, ServeSettings(max_batch_size=4, max_wait_ms=1),
                     classifier=SlowClassifier(clf, 0.4))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                           timeout_graceful_shutdown=10))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started

    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20,
                        limits=httpx.Limits(max_connections=8))

    def one(i):
        return http.post("/v1/classify", json={"texts": [TEXTS[i % len(TEXTS)]]})

    batcher = app.state.batcher
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(8)]  # 8 texts, 4 per pass: >= 0.8 s
        while batcher.requests < 8 and time.monotonic() < deadline + 10:
            time.sleep(0.01)
        in_flight = sum(not f.done() for f in futures)
        server.should_exit = True  # what SIGTERM / SIGINT do
        responses = [f.result() for f in futures]
    http.close()
    assert in_flight >= 4
    thread.join(15)
    assert not thread.is_alive()
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["predictions"][0] for r in responses] == [
        clf.predict([TEXTS[i % len(TEXTS)]] * 2)[0] for i in range(8)]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


# -- the CLI -----------------------------------------------------------------------------------
def test_cli_serve_and_export_usage(trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "textcnn serve runs/sst2" in out and "--max-batch-size" in out
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(tmp_path), "--backend", "tensorflow"])
    assert exc.value.code == 2
