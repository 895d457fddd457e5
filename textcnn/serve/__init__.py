"""The HTTP service: a FastAPI app over one model folder, with micro-batching.

``create_app(model_dir, settings)`` loads the model once and returns the app; ``serve`` runs it
with uvicorn (what ``textcnn serve`` calls). Endpoints:

- ``POST /v1/classify`` ``{"texts": [...], "top_k": 1}`` -> ``{"predictions": [...]}``, one entry
  per text, the same object :meth:`TextClassifier.predict` returns (every head of the model, or
  only ``"head": "NAME"``).
- ``GET /healthz`` (and ``HEAD``) -> ``{"status": "ok"}`` (503 while shutting down, or when
  forward passes cannot run).
- ``GET /v1/model`` -> heads, labels, versions, ``model_id`` / ``weights_sha256`` /
  ``trained_at`` (which trained model), backend, limits (``model.pretrained`` by name).
- ``GET /openapi.json``, ``GET /docs`` (Swagger UI from local files, ``docs``).
- ``GET /``: the demo page (``static/index.html``, no external resources): a text box, each
  head's labels with probability bars, the text with its explanation highlighted.

Micro-batching: requests wait in a queue; one worker takes as many as fit in ``max_batch_size``
texts, waiting at most ``max_wait_ms`` for company (less when no other request is being
received), runs one forward pass in a worker thread (the event loop keeps serving) and answers
each request with its own rows. A text's result does not depend on its batch. A forward pass
that raises anything fails only the requests it was for.

Errors are JSON ``{"detail": [{"loc": [...], "field": "texts[3]", "msg": ..., "type": ...,
"limit": {"name": ..., "value": ...}}]}``: 400 (body is not UTF-8), 404 (no such path), 405
(method), 408 (headers or body slower than ``header_timeout_s`` / ``body_timeout_s``), 413
(body too large), 415 (content-type is not JSON), 422 (malformed JSON, wrong types, empty list,
too many texts, text too long), 500 (the forward pass failed), 503 (shutting down, forward
passes cannot run, or ``max_connections`` reached).

Modules: ``settings`` (:class:`ServeSettings`), ``schemas`` (request and response models),
``errors`` (the error shape), ``batcher`` (:class:`MicroBatcher`), ``gate`` (the ASGI layer in
front: body limit, UTF-8, the classify fast path, access log), ``protocol`` (under the app:
the socket, read deadlines, the connection cap), ``endpoint`` (``POST /v1/classify``),
``explain`` (``POST /v1/explain``), ``docs`` (``/docs`` without a CDN), ``app``
(:func:`create_app`, :func:`serve`).

Example
-------
>>> from fastapi.testclient import TestClient
>>> with TestClient(create_app(model_dir)) as client:
...     answer = client.post("/v1/classify", json={"texts": ["a gorgeous, witty film"]}).json()
>>> [list(row) for row in answer["predictions"]]  # {head: top-k labels with scores} per text
[['sentiment']]
"""

from .app import create_app, serve
from .batcher import MicroBatcher
from .errors import ForwardFailed, ShuttingDown, Unavailable
from .settings import ServeSettings

__all__ = ["ForwardFailed", "MicroBatcher", "ServeSettings", "ShuttingDown", "Unavailable",
           "create_app", "serve"]
