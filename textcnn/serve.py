"""The HTTP service: a FastAPI app over one model folder, with micro-batching.

``create_app(model_dir, settings)`` loads the model once and returns the app; ``serve`` runs it
with uvicorn (what ``textcnn serve`` calls). Endpoints:

- ``POST /v1/classify`` ``{"texts": [...], "top_k": 1}`` -> ``{"predictions": [...]}``, one entry
  per text, the same object :meth:`TextClassifier.predict` returns (every head of the model).
- ``GET /healthz`` -> ``{"status": "ok"}`` (503 while shutting down).
- ``GET /v1/model`` -> heads, labels, versions, backend, limits.
- ``GET /openapi.json``, ``GET /docs``.

Micro-batching: requests wait in a queue; one worker takes as many as fit in ``max_batch_size``
texts, waiting at most ``max_wait_ms`` for company (less when no other request is being
received), runs one forward pass in a worker thread (the event loop keeps serving) and answers
each request with its own rows. A text's result does not depend on its batch.

Errors are JSON ``{"detail": [{"loc": [...], "field": "texts[3]", "msg": ..., "type": ...,
"limit": {"name": ..., "value": ...}}]}``: 400 (body is not UTF-8), 413 (body too large), 422
(malformed JSON, wrong types, empty list, too many texts, text too long), 503 (shutting down).

Example
-------
>>> from fastapi.testclient import TestClient  # doctest: +SKIP
>>> with TestClient(create_app("runs/sst2")) as client:  # doctest: +SKIP
...     client.post("/v1/classify", json={"texts": ["a gorgeous, witty film"]}).json()
{'predictions': [{'sentiment': [{'label': 'positive', 'score': 0.97}]}]}
"""

import asyncio
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from . import __version__
from .config import BACKENDS
from .errors import TextCNNError

log = logging.getLogger("textcnn.access")


@dataclass
class ServeSettings:
    """What ``textcnn serve`` can set; every field has a safe default."""

    host: str = "127.0.0.1"  # loopback: put a proxy or load balancer in front to expose it
    port: int = 8000
    backend: str = "auto"  # pipeline.BACKENDS: auto = folded when the model folds, else torch
    max_batch_size: int = 64  # texts per forward pass; 1 turns micro-batching off
    max_wait_ms: float = 5.0  # longest a request waits for others to share its forward pass
    max_body_bytes: int = 1 << 20  # larger request bodies get 413
    max_texts: int = 256  # texts per request; more get 422
    max_chars: int = 20_000  # characters per text; longer get 422
    threads: int = 0  # intra-op threads of the forward pass (0 = the library's default)
    graceful_timeout_s: float = 30.0  # on SIGTERM, how long in-flight requests may finish

    def check(self) -> "ServeSettings":
        if self.backend not in BACKENDS:
            raise TextCNNError(f"--backend must be one of {', '.join(BACKENDS)}, "
                               f"got {self.backend!r}")
        for name in ("max_batch_size", "max_body_bytes", "max_texts", "max_chars"):
            if getattr(self, name) < 1:
                raise TextCNNError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0 or self.threads < 0:
            raise TextCNNError("max_wait_ms and threads must not be negative")
        return self


# -- request and response models ---------------------------------------------------------------
class LabelScore(BaseModel):
    label: str
    score: float = Field(ge=0.0, le=1.0)


class ClassifyResponse(BaseModel):
    predictions: list[dict[str, list[LabelScore]]] = Field(
        description="One entry per input text, in order: {head: top_k labels with scores}.")


class Limit(BaseModel):
    name: str
    value: int


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. ['body', 'texts', 3].")
    field: str = Field(description="The same as a name, e.g. 'texts[3]' ('body' for the body).")
    msg: str
    type: str
    limit: Limit | None = None


class ErrorResponse(BaseModel):
    detail: list[ErrorDetail]


class HealthResponse(BaseModel):
    status: str


class ModelInfo(BaseModel):
    heads: dict[str, list[str]] = Field(description="{head: label names}; every head is served.")
    model_version: str | None = Field(description="textcnn version that wrote the model folder.")
    textcnn_version: str
    backend: str
    model: dict[str, Any]
    max_length: int = Field(description="Tokens past this are truncated.")
    limits: dict[str, int]
    batching: dict[str, int | float]


def _valid_unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates such as \\ud800)") from None
    return text


def _no_bool_or_str(value):
    # JSON Schema "integer" admits 3.0 (pydantic's lax int turns it into 3, and rejects 3.5);
    # true and "3" are not integers
    if isinstance(value, (bool, str)):
        raise ValueError("must be an integer")  # noqa: TRY004 - pydantic wants ValueError
    return value


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The ``/v1/classify`` body, with this server's limits in its JSON schema."""
    text = Annotated[str, Field(max_length=settings.max_chars), AfterValidator(_valid_unicode)]
    return create_model(
        "ClassifyRequest",
        __config__=ConfigDict(extra="forbid"),
        texts=(list[text], Field(min_length=1, max_length=settings.max_texts,
                                 description="Texts to classify (empty strings are fine).")),
        top_k=(Annotated[int, BeforeValidator(_no_bool_or_str)],
               Field(1, ge=1, description="Labels per head, best first.")),
    )


# -- errors ------------------------------------------------------------------------------------
def _field(loc: list) -> str:
    parts = [p for p in loc if p != "body"] or ["body"]
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def error_body(loc: list, msg: str, type_: str, limit: tuple[str, int] | None = None) -> dict:
    detail = {"loc": loc, "field": _field(loc), "msg": msg, "type": type_}
    if limit:
        detail["limit"] = {"name": limit[0], "value": int(limit[1])}
    return {"detail": [detail]}


def _validation_details(errors: list[dict], settings: ServeSettings,
                        prefix: tuple = ()) -> list[dict]:
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in (*prefix, *err.get("loc", ()))]
        kind, limit = err.get("type", "invalid"), None
        if kind == "too_long" and loc[-1:] == ["texts"]:
            kind, limit = "too_many_texts", ("max_texts", settings.max_texts)
        elif kind == "string_too_long":
            kind, limit = "text_too_long", ("max_chars", settings.max_chars)
        elif kind == "too_short" and loc[-1:] == ["texts"]:
            kind = "empty_texts"
        msg = str(err.get("msg", "invalid"))
        if kind == "json_invalid":
            problem = (err.get("ctx") or {}).get("error", "malformed JSON")
            loc, msg = ["body"], f"malformed JSON: {problem}"
        elif kind == "model_type" and loc == ["body"]:
            msg = "the body must be a JSON object like {\"texts\": [\"...\"], \"top_k\": 1}"
        if limit:
            msg = f"{msg} (limit {limit[0]} = {limit[1]})"
        out.extend(error_body(loc, msg, kind, limit)["detail"])
    return out or error_body(["body"], "invalid request", "invalid")["detail"]


ERROR_RESPONSES = {
    400: {"model": ErrorResponse, "description": "The body is not valid UTF-8."},
    413: {"model": ErrorResponse, "description": "The body is larger than max_body_bytes."},
    415: {"model": ErrorResponse, "description": "The content-type is not JSON."},
    422: {"model": ErrorResponse, "description": "Malformed JSON, wrong types, empty list, "
                                                 "too many texts or a text too long."},
    503: {"model": ErrorResponse, "description": "The server is shutting down."},
}


class ShuttingDown(Exception):
    pass


# -- micro-batching ----------------------------------------------------------------------------
@dataclass
class _Job:
    texts: list[str]
    top_k: int
    future: asyncio.Future


class MicroBatcher:
    """Gather concurrent requests into one forward pass and answer each with its own rows.

    Parameters
    ----------
    predict : callable
        ``predict(texts, top_k) -> one result per text``; runs in a worker thread.
    max_batch_size : int
        Texts per forward pass (a request is never split; a larger one runs alone).
    max_wait_ms : float
        Longest the first request of a batch waits for company. The wait ends early when the
        batch is full or when ``arriving()`` says no other request is being received.
    arriving : callable, optional
        Number of requests that have arrived but are not yet queued.
    """

    def __init__(self, predict: Callable[[list[str], int], list], max_batch_size: int = 64,
                 max_wait_ms: float = 5.0, arriving: Callable[[], int] | None = None):
        self.predict = predict
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.arriving = arriving or (lambda: 1)
        self.requests = 0  # requests submitted
        self.batches = 0  # forward passes run
        self.batched_texts = 0  # texts they held
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="textcnn-forward")

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="textcnn-batcher")

    async def stop(self) -> None:
        """Answer everything queued, then stop; later submissions raise :class:`ShuttingDown`."""
        self.closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str], top_k: int = 1) -> tuple[list, int]:
        """Results for ``texts`` and the number of texts in the forward pass that made them."""
        if self.closing or self._task is None:
            raise ShuttingDown
        future = asyncio.get_running_loop().create_future()
        self.requests += 1
        self._pending.append(_Job(texts, top_k, future))
        self._wake.set()
        return await future

    def _take(self, jobs: list[_Job], n: int) -> int:
        limit = self.max_batch_size
        while self._pending and (not jobs or n + len(self._pending[0].texts) <= limit):
            job = self._pending.popleft()
            jobs.append(job)
            n += len(job.texts)
        return n

    async def _gather(self) -> list[_Job]:
        while not self._pending:
            if self.closing:
                return []
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        jobs: list[_Job] = []
        n = self._take(jobs, 0)
        while n < self.max_batch_size and not self._pending and not self.closing \
                and self.arriving() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                break
            n = self._take(jobs, n)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                return
            try:
                results = await loop.run_in_executor(self._executor, self._forward, jobs)
            except Exception:  # noqa: BLE001 - isolate the request that broke the batch
                results = []
                for job in jobs:
                    try:
                        results.append(
                            (await loop.run_in_executor(self._executor, self._forward, [job]))[0])
                    except Exception as exc:  # noqa: BLE001
                        results.append(exc)
            size = sum(len(j.texts) for j in jobs)
            self.batches += 1
            self.batched_texts += size
            for job, result in zip(jobs, results):
                if job.future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    job.future.set_exception(result)
                else:
                    job.future.set_result((result, size))

    def _forward(self, jobs: list[_Job]) -> list:
        texts = [t for job in jobs for t in job.texts]
        top_k = max(job.top_k for job in jobs)
        # a 1-row forward takes another kernel path (gemv) than a batch does; 2 rows make a
        # text's scores bit-identical whether it came alone or in a batch
        rows = self.predict(texts * 2 if len(texts) == 1 else texts, top_k)
        out, start = [], 0
        for job in jobs:
            part = rows[start:start + len(job.texts)]
            start += len(job.texts)
            if job.top_k < top_k:  # top-k is a stable sort: a smaller k is a prefix
                part = [{h: labels[:job.top_k] for h, labels in row.items()} for row in part]
            out.append(part)
        return out


# -- ASGI middleware: body limit, UTF-8 check, the classify fast path, access log --------------
JSON_HEADERS = [(b"content-type", b"application/json")]


def _json(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Gate:
    """Outermost layer of the app (pure ASGI, no per-request objects).

    Reads the body of every POST up to ``max_body_bytes`` (413 beyond) and checks it is UTF-8
    (400 otherwise); answers ``POST /v1/classify`` itself through ``classify`` (the hot path:
    FastAPI's routing and body handling would cost as much CPU as the model does); hands
    everything else to FastAPI; logs one JSON line per request: method, path, status,
    latency_ms and batch_size (texts in the forward pass that answered it).
    """

    def __init__(self, app, settings: ServeSettings, classify=None, registry: dict | None = None):
        self.app, self.settings, self.classify = app, settings, classify
        self.arriving = 0  # POSTs being received, not yet queued for a forward pass
        if registry is not None:
            registry["gate"] = self

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
        self.arriving += post
        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body, status, payload = await self._read_body(scope, receive)
                if payload is None and post and scope["path"] == "/v1/classify" \
                        and self.classify is not None:
                    content_type = None
                    for key, value in scope["headers"]:
                        if key == b"content-type":
                            content_type = value.decode("latin-1")
                    post, self.arriving = False, self.arriving - 1  # queued from here on
                    status, payload, info["batch_size"] = await self.classify(body, content_type)
                if payload is not None:  # answered here: an error, or the classify result
                    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
                    await send_logged({"type": "http.response.start", "status": status,
                                       "headers": headers})
                    await send_logged({"type": "http.response.body", "body": payload})
                    return
                receive = _replay(body)
            await self.app(scope, receive, send_logged)
        finally:
            self.arriving -= post
            log.info(json.dumps({
                "method": scope["method"], "path": scope["path"], "status": info["status"],
                "latency_ms": round((time.perf_counter() - start) * 1000, 3),
                "batch_size": info["batch_size"],
            }))

    def _too_large(self) -> tuple[bytes, int, bytes]:
        limit = self.settings.max_body_bytes
        return b"", 413, _json(error_body(["body"], f"request body larger than {limit} bytes",
                                          "body_too_large", ("max_body_bytes", limit)))

    async def _read_body(self, scope, receive) -> tuple[bytes, int, bytes | None]:
        """``(body, status, error payload or None)``."""
        limit = self.settings.max_body_bytes
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                return self._too_large()
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return body, 400, _json(error_body(
                ["body"], f"request body is not valid UTF-8 (byte {exc.start})", "utf8_invalid"))
        return body, 200, None


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


# -- the app -----------------------------------------------------------------------------------
def load_classifier(model_dir: str | Path, settings: ServeSettings):
    """The predictor for ``settings.backend`` (every backend has TextClassifier's interface)."""
    from .pipeline import TextClassifier

    if settings.threads and settings.backend != "onnx":
        import torch

        torch.set_num_threads(settings.threads)
    return TextClassifier.from_pretrained(model_dir, backend=settings.backend,
                                          threads=settings.threads)


def create_app(model_dir: str | Path, settings: ServeSettings | None = None,
               classifier=None) -> FastAPI:
    """The FastAPI app serving the model folder ``model_dir`` (loaded once, here).

    ``classifier`` replaces the loaded predictor (tests use it to slow the forward pass down).
    """
    settings = (settings or ServeSettings()).check()
    clf = classifier if classifier is not None else load_classifier(model_dir, settings)
    try:
        saved = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    info = ModelInfo(
        heads=clf.heads, model_version=saved.get("textcnn_version"),
        textcnn_version=__version__, backend=clf.backend,
        model=dict(clf.config.to_dict()["model"]),
        max_length=clf.config.tokenizer.max_length,
        limits={"max_body_bytes": settings.max_body_bytes, "max_texts": settings.max_texts,
                "max_chars": settings.max_chars},
        batching={"max_batch_size": settings.max_batch_size,
                  "max_wait_ms": settings.max_wait_ms},
    ).model_dump()
    Body = request_model(settings)
    gate: dict[str, Gate] = {}

    def predict(texts: list[str], top_k: int) -> list:
        return clf.predict(texts, top_k=top_k)

    batcher = MicroBatcher(predict, settings.max_batch_size, settings.max_wait_ms,
                           arriving=lambda: gate["gate"].arriving if gate else 1)

    async def classify_body(raw: bytes, content_type: str | None
                            ) -> tuple[int, bytes, int | None]:
        """``(status, JSON payload, forward batch size)`` for a ``/v1/classify`` body."""
        kind = (content_type or "application/json").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            return 415, _json(error_body(["headers", "content-type"],
                                         f"content-type must be application/json, got {kind!r}",
                                         "unsupported_media_type")), None
        try:
            body = Body.model_validate_json(raw)  # pydantic-core parses the bytes itself
        except ValidationError as exc:
            details = _validation_details(exc.errors(), settings, ("body",))
            return 422, _json({"detail": details}), None
        try:
            rows, size = await batcher.submit(body.texts, body.top_k)
        except ShuttingDown:
            return 503, _json(error_body([], "the server is shutting down", "shutting_down")), None
        return 200, _json({"predictions": rows}), size

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="textcnn", version=__version__, lifespan=lifespan,
                  # FastAPI's built-in OpenTelemetry looks up its providers on every request
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Convolutional text classification. Limits: "
                              f"{settings.max_body_bytes} bytes per body, {settings.max_texts} "
                              f"texts per request, {settings.max_chars} characters per text.")
    app.state.classifier, app.state.settings, app.state.batcher = clf, settings, batcher

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_details(exc.errors(), settings)},
                            status_code=422)

    @app.exception_handler(ShuttingDown)
    async def shutting_down(request: Request, exc: ShuttingDown):
        return JSONResponse(error_body([], "the server is shutting down", "shutting_down"),
                            status_code=503)

    body_schema = Body.model_json_schema(ref_template="#/components/schemas/{model}")

    @app.post("/v1/classify", response_model=ClassifyResponse, responses=ERROR_RESPONSES,
              summary="Classify texts with every head of the model",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": body_schema}}}})
    async def classify(request: Request):
        # documents the endpoint; the Gate middleware answers it first with the same function
        status, payload, _ = await classify_body(await request.body(),
                                                 request.headers.get("content-type"))
        return Response(payload, status_code=status, media_type="application/json")

    @app.get("/healthz", response_model=HealthResponse, responses={503: ERROR_RESPONSES[503]})
    async def healthz():
        if batcher.closing:
            raise ShuttingDown
        return {"status": "ok"}

    @app.get("/v1/model", response_model=ModelInfo)
    async def model_info():
        return info

    app.add_middleware(Gate, settings=settings, classify=classify_body, registry=gate)
    return app


def serve(model_dir: str | Path, settings: ServeSettings | None = None) -> None:
    """Load the model, then run the app with uvicorn until SIGINT/SIGTERM (in-flight requests
    finish first, for up to ``graceful_timeout_s``)."""
    import uvicorn

    settings = (settings or ServeSettings()).check()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    app = create_app(model_dir, settings)
    print(f"textcnn serve {model_dir}: {json.dumps(asdict(settings))}", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False,
                timeout_graceful_shutdown=settings.graceful_timeout_s, log_level="info")
