"""The HTTP service under slow clients, a crashing forward pass and careless use."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import selectors
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from textcnn.cli import main  # noqa: E402
from textcnn.serve import ServeSettings, create_app  # noqa: E402
from textcnn.serve.app import build_server  # noqa: E402
from textcnn.serve.protocol import bind_socket  # noqa: E402

PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"  # the blank line never comes
NO_BODY = (b"POST /v1/classify HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
           b"content-length: 64\r\n\r\n")  # ... nor the 64 bytes


@contextlib.contextmanager
def running(clf, folder, **settings):
    """``textcnn serve``'s server (protocol, limits, gate) in a thread on 127.0.0.1 (with
    ``url``, ``port`` and ``thread``)."""
    settings = ServeSettings(port=0, **settings).check()
    sock = bind_socket("127.0.0.1", 0)
    app = create_app(folder, settings, classifier=clf)
    server = build_server(app, settings, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    server.thread, server.port = thread, sock.getsockname()[1]
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def stall(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    return s


def room_for(n_files: int) -> None:
    """Raise this process's open-file limit to ``n_files`` (client and server share it here)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n_files:
        if hard != resource.RLIM_INFINITY and hard < n_files:
            pytest.skip(f"needs {n_files} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (n_files, hard))


def wait_closed(socks: dict[socket.socket, float], limit_s: float) -> dict:
    """``{socket: (seconds from its stall to its close, bytes the server sent)}``."""
    out, data = {}, {s: b"" for s in socks}
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        end = time.monotonic() + limit_s
        while len(out) < len(socks) and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                try:
                    chunk = s.recv(4096)
                except OSError:
                    chunk = b""
                data[s] += chunk
                if not chunk:
                    out[s] = (time.monotonic() - socks[s], data[s])
                    sel.unregister(s)
    return out


# -- slow clients ------------------------------------------------------------------------------
def test_600_stalled_connections_neither_starve_others_nor_stay(trained, caplog):
    clf, folder = trained
    room_for(2000)
    timeout = 1.0
    with running(clf, folder, header_timeout_s=timeout, body_timeout_s=timeout) as server, \
            httpx.Client(base_url=server.url, timeout=5) as http, \
            caplog.at_level(logging.INFO, logger="textcnn.access"):
        socks = {}
        for i in range(600):
            s = stall(server.port, PARTIAL_HEAD if i % 2 else NO_BODY)
            socks[s] = time.monotonic()
        t = time.monotonic()
        health = http.get("/healthz")
        health_s, t = time.monotonic() - t, time.monotonic()
        answer = http.post("/v1/classify", json={"texts": ["a gorgeous, witty film", "dull"]})
        classify_s = time.monotonic() - t
        closed = wait_closed(socks, timeout + 5)
        assert http.get("/healthz").status_code == 200
    for s in socks:
        s.close()
    assert health.status_code == 200 and health_s < 1.0, health_s
    assert answer.status_code == 200 and classify_s < 1.0, classify_s
    assert answer.json()["predictions"] == clf.predict(["a gorgeous, witty film", "dull"])
    assert len(closed) == 600  # every stalled connection was closed by the server
    after = sorted(seconds for seconds, _ in closed.values())
    assert after[0] >= 0.9 * timeout and after[-1] < timeout + 2.5, (after[0], after[-1])
    kinds = {json.loads(sent.split(b"\r\n\r\n", 1)[1])["detail"][0]["type"]
             for _, sent in closed.values()}
    assert all(sent.startswith(b"HTTP/1.1 408 ") for _, sent in closed.values())
    assert kinds == {"header_timeout", "body_timeout"}
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "textcnn.access"]
    assert sum(r["status"] == 408 and r["path"] == "/v1/classify" for r in logged) == 300


def test_connection_cap_refuses_at_once_and_frees_with_the_timeout(trained):
    clf, folder = trained
    with running(clf, folder, max_connections=20, header_timeout_s=1.0) as server:
        url = server.url
        held = [stall(server.port, PARTIAL_HEAD) for _ in range(20)]
        time.sleep(0.2)
        t = time.monotonic()
        r = httpx.get(f"{url}/healthz", timeout=5)
        assert time.monotonic() - t < 1.0
        assert r.status_code == 503 and r.headers["connection"] == "close"
        assert r.json()["detail"][0]["limit"] == {"name": "max_connections", "value": 20}
        freed = wait_closed(dict.fromkeys(held, time.monotonic()), 5)
        assert len(freed) == 20  # the header timeout frees the slots
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        for s in held:
            s.close()


def test_a_stalled_upload_does_not_slow_other_requests(trained):
    clf, folder = trained
    body = {"texts": ["a gorgeous, witty film"]}
    with running(clf, folder, max_wait_ms=400) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        http.post("/v1/classify", json=body)  # warm up

        def latency() -> float:
            t = time.monotonic()
            assert http.post("/v1/classify", json=body).status_code == 200
            return time.monotonic() - t

        alone = sorted(latency() for _ in range(5))[2]
        stalled = stall(server.port, NO_BODY)
        time.sleep(0.1)
        beside = sorted(latency() for _ in range(5))[2]
        stalled.close()
    # before the fix every request waited max_wait_ms (400 ms) for the stalled body
    assert beside < alone + 0.2, (alone, beside)


def test_sigterm_does_not_wait_for_a_stalled_upload(trained):
    clf, folder = trained
    with running(clf, folder) as server:  # body_timeout_s and graceful_timeout_s: 30 s
        upload = stall(server.port, NO_BODY)
        assert httpx.head(f"{server.url}/healthz", timeout=10).status_code == 200
        time.sleep(0.2)
        t = time.monotonic()
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        server.thread.join(25)
        took = time.monotonic() - t
        assert not server.thread.is_alive()
        assert upload.recv(4096) == b""  # cut off, not answered
        upload.close()
    assert took < 3, took  # was graceful_timeout_s (30 s)


# -- a forward pass that fails -----------------------------------------------------------------
class Panic(BaseException):
    """Like the PanicException a pathological tokenizer.json raises: not an Exception."""


class FailingOnce:
    """Delegates to a classifier; its first forward pass raises ``Panic``."""

    def __init__(self, clf):
        self.clf, self.failed = clf, False

    def __getattr__(self, name):
        return getattr(self.clf, name)

    def predict(self, texts, top_k=1):
        if not self.failed:
            self.failed = True
            raise Panic("regex blew up")
        return self.clf.predict(texts, top_k=top_k)


def test_a_base_exception_fails_one_request_and_the_next_succeeds(trained):
    clf, folder = trained
    with TestClient(create_app(folder, classifier=FailingOnce(clf))) as c:
        first = c.post("/v1/classify", json={"texts": ["a gorgeous film"]})
        second = c.post("/v1/classify", json={"texts": ["a gorgeous film"]})
        health = c.get("/healthz")
    assert first.status_code == 500
    detail = first.json()["detail"]
    assert set(detail[0]) == {"loc", "field", "msg", "type"}
    assert detail[0]["type"] == "forward_failed" and "Panic" in detail[0]["msg"]
    assert second.status_code == 200
    assert second.json()["predictions"] == clf.predict(["a gorgeous film"])
    assert health.status_code == 200


def test_health_turns_503_when_the_worker_cannot_run(trained):
    from concurrent.futures import ThreadPoolExecutor

    clf, folder = trained
    with TestClient(create_app(folder, classifier=clf)) as c:
        batcher = c.app.state.batcher
        working, broken = batcher._executor, ThreadPoolExecutor(1)
        broken.shutdown()  # no thread can run a forward pass any more
        batcher._executor = broken
        r = c.post("/v1/classify", json={"texts": ["a"]})
        assert r.status_code == 503 and r.json()["detail"][0]["type"] == "unavailable"
        assert c.get("/healthz").status_code == 503
        batcher._executor = working  # it can run again: healthy again
        assert c.post("/v1/classify", json={"texts": ["a"]}).status_code == 200
        assert c.get("/healthz").status_code == 200
        batcher._task.cancel()  # the worker itself is gone: nothing may hang
        time.sleep(0.1)
        r = c.post("/v1/classify", json={"texts": ["a"]})
        assert r.status_code == 503 and r.json()["detail"][0]["type"] == "unavailable"
        assert c.get("/healthz").status_code == 503


# -- careless use ------------------------------------------------------------------------------
def test_bad_or_busy_port_is_one_error_line(trained, capsys):
    _, folder = trained
    assert main(["serve", str(folder), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "70000" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(folder), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot listen on 127.0.0.1:{port}: another process is listening " \
                  "there; stop it or choose another --port\n"
    assert main(["serve", str(folder), "--header-timeout", "0"]) == 2
    assert "header_timeout_s" in capsys.readouterr().err


class SecretPretrained:
    """Delegates to a classifier whose config names a pretrained file by its full path."""

    def __init__(self, clf):
        self.clf, self.config = clf, copy.deepcopy(clf.config)
        self.config.model.pretrained = "/home/someone/secret/vectors/GoogleNews-300.bin"

    def __getattr__(self, name):
        return getattr(self.clf, name)


def test_404_405_head_and_model_info(trained):
    clf, folder = trained
    with TestClient(create_app(folder, classifier=SecretPretrained(clf))) as c:
        missing = c.get("/v2/classify")
        wrong = c.get("/v1/classify")
        head = c.head("/healthz")
        info = c.get("/v1/model")
    assert missing.status_code == 404
    assert missing.json() == {"detail": [{"loc": ["path"], "field": "path", "type": "not_found",
                                          "msg": "no endpoint at /v2/classify"}]}
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    d = wrong.json()["detail"][0]
    assert (d["loc"], d["field"], d["type"]) == (["method"], "method", "method_not_allowed")
    assert head.status_code == 200 and head.content == b""
    assert info.json()["model"]["pretrained"] == "GoogleNews-300.bin"
    assert "secret" not in info.text
