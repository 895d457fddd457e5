"""The FastAPI app over one model folder (:func:`create_app`) and its uvicorn runner (`serve`)."""

import json
import logging
import sys
from contextlib import asynccontextmanager
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from .._version import __version__
from ..errors import TextCNNError
from ..folder import weights_sha256
from ..texts import char_limit
from .batcher import MicroBatcher
from .docs import add_docs
from .endpoint import SHUTTING_DOWN, ClassifyEndpoint, unavailable
from .errors import (
    ERROR_RESPONSES,
    ShuttingDown,
    error_body,
    validation_details,
)
from .explain import ExplainEndpoint, ExplainResponse
from .gate import ArrivalCounter, RequestGate, access_log
from .protocol import bind_socket, guarded_protocol, open_file_budget
from .schemas import ClassifyResponse, HealthResponse, ModelInfo
from .settings import ServeSettings


def load_classifier(model_dir: str | Path, settings: ServeSettings):
    """The predictor for ``settings.backend`` (every backend has TextClassifier's interface)."""
    from ..classifier import TextClassifier

    if settings.threads and settings.backend != "onnx":
        import torch

        torch.set_num_threads(settings.threads)
    return TextClassifier.from_pretrained(model_dir, backend=settings.backend,
                                          threads=settings.threads, device=settings.device)


def build_model_info(model_dir: str | Path, classifier, settings: ServeSettings) -> dict:
    """What ``GET /v1/model`` answers: heads, labels, versions, the weights' hash and training
    date, backend, limits."""
    try:
        saved = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    sha256 = weights_sha256(model_dir)
    return ModelInfo(
        heads=classifier.heads, model_version=saved.get("textcnn_version"),
        model_id=sha256[:12], weights_sha256=sha256, trained_at=saved.get("trained_at"),
        thresholds=saved.get("thresholds", {}),
        textcnn_version=__version__, backend=classifier.backend,
        model=public_model_config(classifier.config.to_dict()["model"]),
        max_length=classifier.config.tokenizer.max_length,
        limits={"max_body_bytes": settings.max_body_bytes, "max_texts": settings.max_texts,
                "max_chars": settings.max_chars},
        batching={"max_batch_size": settings.max_batch_size,
                  "max_wait_ms": settings.max_wait_ms},
    ).model_dump()


def with_text_limit(settings: ServeSettings, model_limit: int | None) -> ServeSettings:
    """``settings`` with ``max_chars`` set: the model's own limit when not given (what
    ``predict`` accepts), else the given one if it is not over the model's."""
    model_limit = model_limit or char_limit(None)
    if settings.max_chars is None:
        return replace(settings, max_chars=model_limit)
    if settings.max_chars > model_limit:
        raise TextCNNError(f"--max-chars {settings.max_chars} is over this model's limit of "
                           f"{model_limit} characters per text (what predict accepts: "
                           "max(20000, 64 * tokenizer.max_length)); give at most that")
    return settings


def public_model_config(model: dict) -> dict:
    """The model section as ``/v1/model`` shows it: ``pretrained`` by its name, not its path."""
    model = dict(model)
    if model.get("pretrained"):
        model["pretrained"] = Path(str(model["pretrained"]).rstrip("/\\")).name
    return model


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
    """Every error FastAPI answers, in the service's error shape: validation (422), unknown
    path (404), method (405), shutdown (503) and anything unexpected (500)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": validation_details(exc.errors(), settings)},
                            status_code=422)

    @app.exception_handler(ShuttingDown)
    async def shutting_down(request: Request, exc: ShuttingDown):
        return JSONResponse(SHUTTING_DOWN, status_code=503)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        path, method = request.url.path, request.method
        if exc.status_code == 404:
            body = error_body(["path"], f"no endpoint at {path}", "not_found")
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            body = error_body(["method"], f"{method} is not allowed on {path} (allowed: "
                                          f"{allowed})", "method_not_allowed")
        else:
            body = error_body([], str(exc.detail), "http_error")
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):  # starlette logs the traceback
        return JSONResponse(error_body([], "internal server error; the server log has the "
                                           "details", "internal_error"), status_code=500)


def add_routes(app: FastAPI, endpoint: ClassifyEndpoint, info: dict) -> None:
    """``POST /v1/classify``, ``GET /healthz`` and ``GET /v1/model``."""
    # RequestGate answers this path before FastAPI sees it, with the same endpoint.answer
    endpoint.route(app, "/v1/classify", ClassifyResponse,
                   "Classify texts with every head of the model")

    @app.get("/healthz", response_model=HealthResponse, responses={503: ERROR_RESPONSES[503]})
    @app.head("/healthz", include_in_schema=False)
    async def healthz():
        batcher = endpoint.batcher
        if batcher.closing:
            raise ShuttingDown
        if not batcher.healthy:
            return JSONResponse(unavailable(batcher.failure), status_code=503)
        return {"status": "ok"}

    @app.get("/v1/model", response_model=ModelInfo)
    async def model_info():
        return info


def add_demo_page(app: FastAPI) -> None:
    """``GET /``: the demo page, one self-contained file (``static/index.html``) over the API."""
    page = (resources.files(__package__) / "static" / "index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def demo_page():
        return HTMLResponse(page)


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
    settings = with_text_limit(settings, getattr(clf, "max_chars", None))
    info = build_model_info(model_dir, clf, settings)
    arrivals = ArrivalCounter()

    def predict(texts: list[str], top_k: int) -> list:
        return clf.predict(texts, top_k=top_k)

    batcher = MicroBatcher(predict, settings.max_batch_size, settings.max_wait_ms,
                           arriving=lambda: arrivals.receiving,
                           whole_heads=getattr(clf, "multi_label", ()))
    endpoint = ClassifyEndpoint(settings, batcher, list(clf.heads))
    app = FastAPI(title="textcnn", version=__version__, lifespan=batcher_lifespan(batcher),
                  docs_url=None, redoc_url=None,  # add_docs: /docs without a CDN
                  # FastAPI's built-in OpenTelemetry looks up its providers on every request
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  description="Convolutional text classification. Limits: "
                              f"{settings.max_body_bytes} bytes per body, {settings.max_texts} "
                              f"texts per request, {settings.max_chars} characters per text.")
    app.state.classifier, app.state.settings = clf, settings
    app.state.batcher, app.state.arrivals = batcher, arrivals
    add_demo_page(app)
    add_error_handlers(app, settings)
    add_routes(app, endpoint, info)
    add_docs(app)
    ExplainEndpoint(settings, batcher, clf).route(
        app, "/v1/explain", ExplainResponse,
        "Explain each head's prediction: the token windows that drove its logit")
    app.add_middleware(RequestGate, settings=settings, classify=endpoint.answer,
                       arrivals=arrivals)
    return app


def serve(model_dir: str | Path, settings: ServeSettings | None = None) -> None:
    """Take the port, load the model, then serve with uvicorn until SIGINT/SIGTERM (in-flight
    requests finish first, for up to ``graceful_timeout_s``; requests whose body is still
    arriving are cut off).

    Prints ``textcnn serve: listening on URL`` on stderr once requests are answered.

    Raises
    ------
    TextCNNError
        Bad settings, or the address cannot be listened on (checked before the model loads).
    """
    settings = (settings or ServeSettings()).check()
    sock = bind_socket(settings.host, settings.port)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False
    with sock:
        app = create_app(model_dir, settings)
        print(f"textcnn serve {model_dir}: {json.dumps(asdict(settings))}", file=sys.stderr,
              flush=True)
        build_server(app, settings, sock).run(sockets=[sock])


def build_server(app: FastAPI, settings: ServeSettings, sock) -> "AnnouncingServer":
    """The uvicorn server for ``app`` on the listening socket ``sock`` (from
    :func:`~textcnn.serve.protocol.bind_socket`), with the slow-client limits of ``settings``:
    ``header_timeout_s``, ``body_timeout_s`` and ``max_connections`` (``protocol.py``) and
    ``keep_alive_s`` (uvicorn's). Run it with ``server.run(sockets=[sock])``."""
    cap = open_file_budget(settings.max_connections)
    if cap < settings.max_connections:
        print(f"textcnn serve: the open-file limit allows {cap} connections, not "
              f"{settings.max_connections} (raise `ulimit -n`)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, http=guarded_protocol(settings, cap), ws="none",
                            access_log=False, log_level="info",
                            timeout_keep_alive=settings.keep_alive_s,
                            timeout_graceful_shutdown=settings.graceful_timeout_s)
    return AnnouncingServer(config, sock)


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server, saying where it listens once it answers (uvicorn does not when it is
    handed the socket)."""

    def __init__(self, config: uvicorn.Config, sock):
        super().__init__(config)
        host, port = sock.getsockname()[:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def startup(self, sockets=None) -> None:
        try:
            await super().startup(sockets=sockets)
        except OSError as exc:  # listen() failed: another server took the port meanwhile
            raise TextCNNError(f"cannot listen on {self.url}: {exc.strerror or exc}") from None
        if self.started:
            print(f"textcnn serve: listening on {self.url}", file=sys.stderr, flush=True)
