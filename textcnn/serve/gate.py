"""The outermost ASGI layer: body limit, UTF-8 check, the classify fast path, the access log."""

import json
import logging
import time
from collections.abc import Awaitable, Callable

from .errors import error_body
from .settings import ServeSettings

access_log = logging.getLogger("textcnn.access")

JSON_HEADERS = [(b"content-type", b"application/json")]

# ``classify(body, content_type) -> (status, JSON payload, texts in the forward pass or None)``
ClassifyBody = Callable[[bytes, str | None], Awaitable[tuple[int, bytes, int | None]]]

# a body that has sent nothing for this long is not about to arrive: the micro-batcher stops
# waiting for it (a stalled upload must not make every batch wait max_wait_ms)
ARRIVAL_PATIENCE_S = 0.01
# scope key: the status the connection layer (protocol.py) already answered a request with
ANSWERED = "textcnn.answered"


def json_bytes(payload) -> bytes:
    """``payload`` as compact UTF-8 JSON, the encoding of every body the service writes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class ArrivalCounter:
    """POST requests being received (their body is being read), not yet queued for a forward
    pass. :class:`RequestGate` reports them; the micro-batcher stops waiting for company when
    :attr:`receiving` is 0. ``create_app`` keeps the one counter of an app on
    ``app.state.arrivals``.

    A body that has sent nothing for ``patience_s`` stops counting until its next chunk comes.

    Example
    -------
    >>> arrivals = ArrivalCounter(patience_s=60)
    >>> ticket = arrivals.begin()
    >>> arrivals.receiving
    1
    >>> arrivals.end(ticket)
    >>> arrivals.receiving
    0
    """

    def __init__(self, patience_s: float = ARRIVAL_PATIENCE_S):
        self.patience_s = patience_s
        self._last_seen: dict[int, float] = {}  # ticket -> when its body last moved, oldest first
        self._tickets = 0

    def begin(self) -> int:
        """A ticket for a request whose body is now being read."""
        self._tickets += 1
        self._last_seen[self._tickets] = time.monotonic()
        return self._tickets

    def touch(self, ticket: int) -> None:
        """The body of ``ticket`` moved (a chunk arrived)."""
        if self._last_seen.pop(ticket, None) is not None:
            self._last_seen[ticket] = time.monotonic()

    def end(self, ticket: int) -> None:
        """The body of ``ticket`` was read (or will never be)."""
        self._last_seen.pop(ticket, None)

    @property
    def receiving(self) -> int:
        """Requests whose body moved within the last ``patience_s``."""
        recent, n = time.monotonic() - self.patience_s, 0
        for seen in reversed(self._last_seen.values()):
            if seen < recent:
                break
            n += 1
        return n


class ClientGone(Exception):
    """The client closed the connection before its request body arrived."""


class RequestGate:
    """Outermost layer of the app (pure ASGI, no per-request objects).

    Reads the body of every POST, PUT and PATCH up to ``max_body_bytes`` (413 beyond) and
    checks it is UTF-8 (400 otherwise); answers ``POST /v1/classify`` itself through
    ``classify`` (the hot path: FastAPI's routing and body handling would cost as much CPU as
    the model does); hands everything else to FastAPI; logs one JSON line per request to the
    ``textcnn.access`` logger: method, path, status (408: the body was too slow and
    ``protocol.py`` answered; 499: the client left before its body arrived), latency_ms and
    batch_size (texts in the forward pass that answered it).

    Parameters
    ----------
    app : ASGI app
        What answers everything but ``POST /v1/classify`` (FastAPI's middleware stack).
    settings : ServeSettings
        Gives ``max_body_bytes``.
    classify : callable
        Answers a ``/v1/classify`` body (see ``ClassifyBody``).
    arrivals : ArrivalCounter
        Told about the POST bodies this layer is receiving.
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

        ticket = self.arrivals.begin() if scope["method"] == "POST" else None
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body, status, payload = await self._read_body(scope, receive, ticket)
                if payload is None and ticket is not None and scope["path"] == "/v1/classify":
                    self.arrivals.end(ticket)  # queued from here on
                    status, payload, info["batch_size"] = await self.classify(
                        body, _content_type(scope))
                if payload is not None:  # answered here: an error, or the classify result
                    await _answer(send_logged, status, payload)
                    return
                receive = _replay_body(body)
            await self.app(scope, receive, send_logged)
        except ClientGone:
            info["status"] = scope.get(ANSWERED, 499)
        finally:
            if ticket is not None:
                self.arrivals.end(ticket)
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

    async def _read_body(self, scope, receive, ticket: int | None
                         ) -> tuple[bytes, int, bytes | None]:
        """``(body, status, error payload or None)``; raises :class:`ClientGone`."""
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                return self._body_too_large()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return self._body_too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
            if ticket is not None:
                self.arrivals.touch(ticket)
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return body, 400, json_bytes(error_body(
                ["body"], f"request body is not valid UTF-8 (byte {exc.start})", "utf8_invalid"))
        return body, 200, None


def _content_type(scope) -> str | None:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return value.decode("latin-1")
    return None


async def _answer(send, status: int, payload: bytes) -> None:
    """Send ``payload`` as a JSON response."""
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


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
