"""The HTTP service: a FastAPI app over one model folder, with micro-batching.

``create_app(model_dir, settings)`` loads the model once and returns the app; ``serve`` runs it
with uvicorn (what ``textcnn serve`` calls). Endpoints:

- ``POST /v1/classify`` ``{"texts": [...], "top_k": 1}`` -> ``{"predictions": [...]}``, one entry
  per text, the same object :meth:`TextClassifier.predict` returns (every head of the model, or
  only ``"head": "NAME"``).
- ``GET /healthz`` -> ``{"status": "ok"}`` (503 while shutting down).
- ``GET /v1/model`` -> heads, labels, versions, ``model_id`` / ``weights_sha256`` /
  ``trained_at`` (which trained model), backend, limits.
- ``GET /openapi.json``, ``GET /docs`` (Swagger UI from local files, ``docs``).

Micro-batching: requests wait in a queue; one worker takes as many as fit in ``max_batch_size``
texts, waiting at most ``max_wait_ms`` for company (less when no other request is being
received), runs one forward pass in a worker thread (the event loop keeps serving) and answers
each request with its own rows. A text's result does not depend on its batch.

Errors are JSON ``{"detail": [{"loc": [...], "field": "texts[3]", "msg": ..., "type": ...,
"limit": {"name": ..., "value": ...}}]}``: 400 (body is not UTF-8), 413 (body too large), 415
(content-type is not JSON), 422 (malformed JSON, wrong types, empty list, too many texts, text
too long), 503 (shutting down).

Modules: ``settings`` (:class:`ServeSettings`), ``schemas`` (request and response models),
``errors`` (the error shape), ``batcher`` (:class:`MicroBatcher`), ``gate`` (the ASGI layer in
front: body limit, UTF-8, the classify fast path, access log), ``docs`` (``/docs`` without a
CDN), ``app`` (:func:`create_app`, :func:`serve`).

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
from .errors import ShuttingDown
from .settings import ServeSettings

__all__ = ["MicroBatcher", "ServeSettings", "ShuttingDown", "create_app", "serve"]
