"""``POST /v1/classify``: a request body checked, batched and answered (:class:`ClassifyEndpoint`).

The FastAPI app (:mod:`textcnn.serve.app`) and the fast path in front of it
(:class:`~textcnn.serve.gate.RequestGate`) both answer through it; ``POST /v1/explain``
(:mod:`textcnn.serve.explain`) builds on it.
"""

import json

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import ValidationError

from .batcher import MicroBatcher
from .errors import (
    ERROR_RESPONSES,
    ForwardFailed,
    ShuttingDown,
    Unavailable,
    error_body,
    validation_details,
)
from .gate import json_bytes
from .schemas import request_model
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
    heads : list of str, optional
        The model's heads: the values the request's ``head`` may take.
    """

    def __init__(self, settings: ServeSettings, batcher: MicroBatcher,
                 heads: list[str] | None = None):
        self.settings, self.batcher = settings, batcher
        self.body_model = request_model(settings, heads)

    def route(self, app: FastAPI, path: str, response_model: type, summary: str) -> None:
        """Register ``POST path`` answered by :meth:`answer`, documented in /openapi.json."""
        body_schema = self.body_model.model_json_schema(
            ref_template="#/components/schemas/{model}")

        @app.post(path, response_model=response_model, responses=ERROR_RESPONSES,
                  summary=summary, openapi_extra={"requestBody": {"required": True, "content": {
                      "application/json": {"schema": body_schema}}}})
        async def post(request: Request):
            status, payload, _ = await self.answer(await request.body(),
                                                   request.headers.get("content-type"))
            return Response(payload, status_code=status, media_type="application/json")

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
            details = validation_details(self._text_errors(raw) or exc.errors(), self.settings,
                                         ("body",))
            return 422, json_bytes({"detail": details}), None
        return await self.run(body)

    def _text_errors(self, raw: bytes) -> list | None:
        """The errors of a body that pydantic-core's parser refuses but Python's reads: JSON that
        spells a lone surrogate (``"\\ud800"``), refused then by the text rule naming the text,
        as on every other path. None for any other body."""
        if b"\\u" not in raw:
            return None
        try:
            self.body_model.model_validate(json.loads(raw))
        except ValidationError as exc:
            return exc.errors()
        except ValueError:
            return None
        return None

    async def run(self, body) -> tuple[int, bytes, int | None]:
        """``(status, JSON payload, forward batch size)`` for a validated body."""
        try:
            rows, size = await self.batcher.submit(body.texts, body.top_k)
        except ShuttingDown:
            return 503, json_bytes(SHUTTING_DOWN), None
        except Unavailable as exc:
            return 503, json_bytes(unavailable(exc)), None
        except ForwardFailed as exc:
            return 500, json_bytes(error_body(
                [], f"{exc}; the server log has the details", "forward_failed")), None
        if body.head is not None:  # every head ran in the shared forward pass; keep one
            rows = [{body.head: row[body.head]} for row in rows]
        return 200, json_bytes({"predictions": rows}), size


SHUTTING_DOWN = error_body([], "the server is shutting down", "shutting_down")


def unavailable(exc: BaseException | None) -> dict:
    """The 503 body for a batcher that cannot run forward passes."""
    why = f": {exc}" if exc is not None else ""
    return error_body([], f"the model cannot answer now (the forward-pass worker is not "
                          f"running{why})", "unavailable")
