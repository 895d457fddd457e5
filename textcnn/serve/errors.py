"""The service's error shape: ``{"detail": [{loc, field, msg, type, limit?}]}`` and its statuses.

Every 4xx/5xx the service sends is built by :func:`error_body`; pydantic's validation errors
are mapped onto it (with the limit that was hit) by :func:`validation_details`.
"""

from .schemas import ErrorResponse
from .settings import ServeSettings

ERROR_RESPONSES = {
    400: {"model": ErrorResponse, "description": "The body is not valid UTF-8."},
    413: {"model": ErrorResponse, "description": "The body is larger than max_body_bytes."},
    415: {"model": ErrorResponse, "description": "The content-type is not JSON."},
    422: {"model": ErrorResponse, "description": "Malformed JSON, wrong types, empty list, "
                                                 "too many texts or a text too long."},
    408: {"model": ErrorResponse, "description": "The body did not arrive within "
                                                 "body_timeout_s of the headers."},
    500: {"model": ErrorResponse, "description": "The forward pass failed on this request."},
    503: {"model": ErrorResponse, "description": "The server is shutting down, or cannot run "
                                                 "forward passes."},
}


class ShuttingDown(Exception):
    """The server is shutting down and takes no new work (answered with 503)."""


class Unavailable(Exception):
    """The micro-batcher cannot run forward passes (answered with 503; /healthz says so too)."""


class ForwardFailed(RuntimeError):
    """The forward pass raised on a request's texts (answered with 500; the cause is logged)."""


def _field_name(loc: list) -> str:
    parts = [p for p in loc if p != "body"] or ["body"]
    out = str(parts[0])
    for p in parts[1:]:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def error_body(loc: list, msg: str, type_: str, limit: tuple[str, int] | None = None) -> dict:
    """One error as the service sends it.

    Parameters
    ----------
    loc : list
        Where the problem is, e.g. ``["body", "texts", 3]`` (``field`` becomes ``texts[3]``).
    msg : str
        What is wrong, for a person.
    type_ : str
        What is wrong, for a program, e.g. ``"too_many_texts"``.
    limit : (str, int), optional
        The server limit that was hit, e.g. ``("max_texts", 256)``.

    Returns
    -------
    dict
        ``{"detail": [{"loc", "field", "msg", "type"[, "limit": {"name", "value"}]}]}``.
    """
    detail = {"loc": loc, "field": _field_name(loc), "msg": msg, "type": type_}
    if limit:
        detail["limit"] = {"name": limit[0], "value": int(limit[1])}
    return {"detail": [detail]}


def validation_details(errors: list[dict], settings: ServeSettings,
                       prefix: tuple = ()) -> list[dict]:
    """Pydantic's validation errors as ``detail`` entries of :func:`error_body`.

    Parameters
    ----------
    errors : list of dict
        ``ValidationError.errors()`` (or FastAPI's ``RequestValidationError.errors()``).
    settings : ServeSettings
        The limits named in ``too_many_texts`` and ``text_too_long`` errors.
    prefix : tuple
        Put before each error's ``loc`` (``("body",)`` when the body model was validated).

    Returns
    -------
    list of dict
        One entry per error (at least one).
    """
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
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if kind == "json_invalid":
            problem = (err.get("ctx") or {}).get("error", "malformed JSON")
            loc, msg = ["body"], f"malformed JSON: {problem}"
        elif kind == "model_type" and loc == ["body"]:
            msg = "the body must be a JSON object like {\"texts\": [\"...\"], \"top_k\": 1}"
        if limit:
            msg = f"{msg} (limit {limit[0]} = {limit[1]})"
        out.extend(error_body(loc, msg, kind, limit)["detail"])
    return out or error_body(["body"], "invalid request", "invalid")["detail"]
