"""The outermost ASGI layer: body limit, UTF-8 check, the classify fast path, the access log."""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .errors import error_body
from .settings import ServeSettings

access_log = logging.getLogger("textcnn.access")

JSON_HEADERS = [(b"content-type", b"application/json")]

# ``classify(body, content_type) -> (status, JSON payload, texts in the forward pass or None)``
ClassifyBody = Callable[[bytes, str | None], Awaitable[tuple[int, bytes, int | None]]]


def json_bytes(payload) -> bytes:
    """``payload`` as compact UTF-8 JSON, the encoding of every body the service writes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class ArrivalCounter:
    """POST requests being received (their body is being read), not yet queued for a forward
    pass. :class:`RequestGate` counts them; the micro-batcher stops waiting for company when
    there are none. ``create_app`` keeps the one counter of an app on ``app.state.arrivals``.
    """

    receiving: int = 0


class RequestGate:
    """Outermost layer of the app (pure ASGI, no per-request objects).

    Reads the body of every POST, PUT and PATCH up to ``max_body_bytes`` (413 beyond) and
    checks it is UTF-8 (400 otherwise); answers ``POST /v1/classify`` itself through
    ``classify`` (the hot path: FastAPI's routing and body handling would cost as much CPU as
    the model does); hands everything else to FastAPI; logs one JSON line per request to the
    ``textcnn.access`` logger: method, path, status, latency_ms and batch_size (texts in the
    forward pass that answered it).

    Parameters
    ----------
    app : ASGI app
        What answers everything but ``POST /v1/classify`` (FastAPI's middleware stack).
    settings : ServeSettings
        Gives ``max_body_bytes``.
    classify : callable
        Answers a ``/v1/classify`` body (see ``ClassifyBody``).
    arrivals : ArrivalCounter
        Counts the POSTs this layer is receiving.
    """

    def __init__(self, app, settings: ServeSettings, classify: ClassifyBody,
                 arrivals: ArrivalCounter):
        self.app, self.settings, self.classify, self.arrivals = app, settings, classify, arrivals

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        info = {"status": 500, "batch_size": None}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
            await send(message)

        post = scope["method"] == "POST"
        self.arrivals.receiving += post
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body, status, payload = await self._read_body(scope, receive)
                if payload is None and post and scope["path"] == "/v1/classify":
                    content_type = None
                    for key, value in scope["headers"]:
                        if key == b"content-type":
                            content_type = value.decode("latin-1")
                    post = False  # queued from here on
                    self.arrivals.receiving -= 1
                    status, payload, info["batch_size"] = await self.classify(body, content_type)
                if payload is not None:  # answered here: an error, or the classify result
                    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
                    await send_logged({"type": "http.response.start", "status": status,
                                       "headers": headers})
                    await send_logged({"type": "http.response.body", "body": payload})
                    return
                receive = _replay_body(body)
            await self.app(scope, receive, send_logged)
        finally:
            self.arrivals.receiving -= post
            access_log.info(json.dumps({
                "method": scope["method"], "path": scope["path"], "status": info["status"],
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                "batch_size": info["batch_size"],
            }))

    def _body_too_large(self) -> tuple[bytes, int, bytes]:
        limit = self.settings.max_body_bytes
        return b"", 413, json_bytes(error_body(
            ["body"], f"request body larger than {limit} bytes", "body_too_large",
            ("max_body_bytes", limit)))

    async def _read_body(self, scope, receive) -> tuple[bytes, int, bytes | None]:
        """``(body, status, error payload or None)``."""
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                return self._body_too_large()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return self._body_too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return body, 400, json_bytes(error_body(
                ["body"], f"request body is not valid UTF-8 (byte {exc.start})", "utf8_invalid"))
        return body, 200, None


def _replay_body(body: bytes):
    """An ASGI ``receive`` that hands the already read ``body`` to the app behind the gate."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
