"""The FastAPI app over one model folder (:func:`create_app`) and its uvicorn runner (`serve`)."""

import json
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from .. import __version__
from .batcher import MicroBatcher
from .errors import ERROR_RESPONSES, ShuttingDown, error_body, validation_details
from .gate import ArrivalCounter, RequestGate, access_log, json_bytes
from .schemas import ClassifyResponse, HealthResponse, ModelInfo, request_model
from .settings import ServeSettings


class ClassifyEndpoint:
    """The one implementation of ``POST /v1/classify``.

    :class:`RequestGate` calls :meth:`answer` on the hot path; the FastAPI route, which
    documents the endpoint in ``/openapi.json`` and answers other methods with 405, calls it too.

    Parameters
    ----------
    settings : ServeSettings
        The limits of the request body.
    batcher : MicroBatcher
        Runs the forward passes.
    """

    def __init__(self, settings: ServeSettings, batcher: MicroBatcher):
        self.settings, self.batcher = settings, batcher
        self.body_model = request_model(settings)

    async def answer(self, raw: bytes, content_type: str | None
                     ) -> tuple[int, bytes, int | None]:
        """``(status, JSON payload, forward batch size)`` for a ``/v1/classify`` body.

        Parameters
        ----------
        raw : bytes
            The request body (already known to be UTF-8 and within ``max_body_bytes``).
        content_type : str or None
            The content-type header (missing means JSON).
        """
        kind = (content_type or "application/json").split(";")[0].strip().lower()
        if kind != "application/json" and not kind.endswith("+json"):
            return 415, json_bytes(error_body(
                ["headers", "content-type"], f"content-type must be application/json, got {kind!r}",
                "unsupported_media_type")), None
        try:
            body = self.body_model.model_validate_json(raw)  # pydantic-core parses the bytes
        except ValidationError as exc:
            details = validation_details(exc.errors(), self.settings, ("body",))
            return 422, json_bytes({"detail": details}), None
        try:
            rows, size = await self.batcher.submit(body.texts, body.top_k)
        except ShuttingDown:
            return 503, json_bytes(error_body([], "the server is shutting down",
                                              "shutting_down")), None
        return 200, json_bytes({"predictions": rows}), size


def load_classifier(model_dir: str | Path, settings: ServeSettings):
    """The predictor for ``settings.backend`` (every backend has TextClassifier's interface)."""
    from ..classifier import TextClassifier

    if settings.threads and settings.backend != "onnx":
        import torch

        torch.set_num_threads(settings.threads)
    return TextClassifier.from_pretrained(model_dir, backend=settings.backend,
                                          threads=settings.threads, device=settings.device)


def build_model_info(model_dir: str | Path, classifier, settings: ServeSettings) -> dict:
    """What ``GET /v1/model`` answers: heads, labels, versions, backend, limits."""
    try:
        saved = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    return ModelInfo(
        heads=classifier.heads, model_version=saved.get("textcnn_version"),
        textcnn_version=__version__, backend=classifier.backend,
        model=dict(classifier.config.to_dict()["model"]),
        max_length=classifier.config.tokenizer.max_length,
        limits={"max_body_bytes": settings.max_body_bytes, "max_texts": settings.max_texts,
                "max_chars": settings.max_chars},
        batching={"max_batch_size": settings.max_batch_size,
                  "max_wait_ms": settings.max_wait_ms},
    ).model_dump()


def batcher_lifespan(batcher: MicroBatcher):
    """The app's lifespan: the batcher runs from startup until shutdown, drained at the end."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    return lifespan


def add_error_handlers(app: FastAPI, settings: ServeSettings) -> None:
    """Validation errors (422) and shutdown (503) in the service's error shape."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": validation_details(exc.errors(), settings)},
                            status_code=422)

    @app.exception_handler(ShuttingDown)
    async def shutting_down(request: Request, exc: ShuttingDown):
        return JSONResponse(error_body([], "the server is shutting down", "shutting_down"),
                            status_code=503)


def add_routes(app: FastAPI, endpoint: ClassifyEndpoint, info: dict) -> None:
    """``POST /v1/classify``, ``GET /healthz`` and ``GET /v1/model``."""
    body_schema = endpoint.body_model.model_json_schema(
        ref_template="#/components/schemas/{model}")

    @app.post("/v1/classify", response_model=ClassifyResponse, responses=ERROR_RESPONSES,
              summary="Classify texts with every head of the model",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": body_schema}}}})
    async def classify(request: Request):
        # RequestGate answers this path before FastAPI sees it, with the same endpoint.answer
        status, payload, _ = await endpoint.answer(await request.body(),
                                                   request.headers.get("content-type"))
        return Response(payload, status_code=status, media_type="application/json")

    @app.get("/healthz", response_model=HealthResponse, responses={503: ERROR_RESPONSES[503]})
    async def healthz():
        if endpoint.batcher.closing:
            raise ShuttingDown
        return {"status": "ok"}

    @app.get("/v1/model", response_model=ModelInfo)
    async def model_info():
        return info


def create_app(model_dir: str | Path, settings: ServeSettings | None = None,
               classifier=None) -> FastAPI:
    """The FastAPI app serving the model folder ``model_dir`` (loaded once, here).

    Parameters
    ----------
    model_dir : str or Path
        A model folder written by ``textcnn train``.
    settings : ServeSettings, optional
        Backend, limits and batching (checked here).
    classifier : optional
        Replaces the loaded predictor (tests use it to slow the forward pass down).

    Returns
    -------
    FastAPI
        With ``app.state.classifier``, ``settings``, ``batcher`` and ``arrivals`` (the
        :class:`ArrivalCounter` that the request gate and the batcher share).
    """
    settings = (settings or ServeSettings()).check()
    clf = classifier if classifier is not None else load_classifier(model_dir, settings)
    info = build_model_info(model_dir, clf, settings)
    arrivals = ArrivalCounter()

    def predict(texts: list[str], top_k: int) -> list:
        return clf.predict(texts, top_k=top_k)

    batcher = MicroBatcher(predict, settings.max_batch_size, settings.max_wait_ms,
                           arriving=lambda: arrivals.receiving)
    endpoint = ClassifyEndpoint(settings, batcher)
    app = FastAPI(title="textcnn", version=__version__, lifespan=batcher_lifespan(batcher),
                  # FastAPI's built-in OpenTelemetry looks up its providers on every request
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Convolutional text classification. Limits: "
                              f"{settings.max_body_bytes} bytes per body, {settings.max_texts} "
                              f"texts per request, {settings.max_chars} characters per text.")
    app.state.classifier, app.state.settings = clf, settings
    app.state.batcher, app.state.arrivals = batcher, arrivals
    add_error_handlers(app, settings)
    add_routes(app, endpoint, info)
    app.add_middleware(RequestGate, settings=settings, classify=endpoint.answer,
                       arrivals=arrivals)
    return app


def serve(model_dir: str | Path, settings: ServeSettings | None = None) -> None:
    """Load the model, then run the app with uvicorn until SIGINT/SIGTERM (in-flight requests
    finish first, for up to ``graceful_timeout_s``)."""
    import uvicorn

    settings = (settings or ServeSettings()).check()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    app = create_app(model_dir, settings)
    print(f"textcnn serve {model_dir}: {json.dumps(asdict(settings))}", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False,
                timeout_graceful_shutdown=settings.graceful_timeout_s, log_level="info")
