"""The JSON the service reads and writes: pydantic request and response models.

The models carry no class docstrings on purpose: pydantic copies a model's docstring into its
JSON schema, so it would become part of ``/openapi.json``.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ..texts import text_problem
from .settings import ServeSettings


class LabelScore(BaseModel):
    label: str
    score: float = Field(ge=0.0, le=1.0)


class ClassifyResponse(BaseModel):
    predictions: list[dict[str, list[LabelScore]]] = Field(
        description="One entry per input text, in order: {head: top_k labels with scores}; a "
                    "multi-label head gives every label at or over its threshold instead.")


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
    thresholds: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="{multi-label head: {label: threshold}}: a label is "
                                          "answered when its score is at or over its threshold.")
    model_version: str | None = Field(description="textcnn version that wrote the model folder.")
    model_id: str = Field(description="The first 12 hex digits of weights_sha256.")
    weights_sha256: str = Field(description="SHA-256 of the served model.safetensors.")
    trained_at: str | None = Field(description="When the model folder was written (UTC, ISO "
                                               "8601); null for folders older than this field.")
    textcnn_version: str
    backend: str
    model: dict[str, Any]
    max_length: int = Field(description="Tokens past this are truncated.")
    limits: dict[str, int]
    batching: dict[str, int | float]


def _valid_text(text):
    # before pydantic's own str check, which refuses a lone surrogate in its own words
    problem = text_problem(text) if isinstance(text, str) else None  # textcnn.texts' rule
    if problem is not None:
        raise ValueError(f"text {problem}")
    return text


def _no_bool_or_str(value):
    # JSON Schema "integer" admits 3.0 (pydantic's lax int turns it into 3, and rejects 3.5);
    # true and "3" are not integers
    if isinstance(value, (bool, str)):
        raise ValueError("must be an integer")  # noqa: TRY004 - pydantic wants ValueError
    return value


def _texts_and_top_k(settings: ServeSettings, top_k: int, top_k_doc: str) -> dict:
    """The ``texts`` and ``top_k`` fields every POST body has, with this server's limits."""
    text = Annotated[str, Field(max_length=settings.max_chars), BeforeValidator(_valid_text)]
    return {
        "texts": (list[text], Field(min_length=1, max_length=settings.max_texts,
                                    description="Texts to classify (empty strings are fine).")),
        "top_k": (Annotated[int, BeforeValidator(_no_bool_or_str)],
                  Field(top_k, ge=1, description=top_k_doc)),
    }


def request_model(settings: ServeSettings, heads: list[str] | None = None) -> type[BaseModel]:
    """The ``/v1/classify`` body, with this server's limits in its JSON schema.

    Parameters
    ----------
    settings : ServeSettings
        Gives ``max_texts`` (items of ``texts``) and ``max_chars`` (characters per text).
    heads : list of str, optional
        The model's heads, the values ``head`` may take (any string when None).

    Returns
    -------
    type[BaseModel]
        ``ClassifyRequest``: ``texts`` (1 to ``max_texts`` strings), ``top_k`` (>= 1,
        default 1) and ``head`` (one head's answer only; default: every head); any other
        field is an error.
    """
    return create_model(
        "ClassifyRequest", __config__=ConfigDict(extra="forbid"),
        **_texts_and_top_k(settings, 1, "Labels per head, best first."),
        head=(Literal[tuple(heads)] | None if heads else str | None,
              Field(None, description="Answer only this head (default: every head).")),
    )


def explain_request_model(settings: ServeSettings, heads: list[str]) -> type[BaseModel]:
    """The ``/v1/explain`` body: as ``/v1/classify``'s (``top_k`` counts windows, default 5),
    plus ``head`` (one of ``heads``; every head when omitted)."""
    return create_model(
        "ExplainRequest", __config__=ConfigDict(extra="forbid"),
        **_texts_and_top_k(settings, 5, "Windows per head, largest contribution first."),
        head=(Literal[tuple(heads)] | None, Field(None, description="Only this head.")),
    )


class Token(BaseModel):
    text: str
    start: int = Field(description="Character offset of the token in the input text.")
    end: int = Field(description="Character offset just past the token.")


class Window(BaseModel):
    start: int
    end: int
    char_start: int
    char_end: int
    text: str
    contribution: float


class HeadExplanation(BaseModel):
    label: str = Field(description="The predicted label.")
    score: float = Field(description="Its probability.")
    logit: float = Field(description="Its logit.")
    bias: float = Field(description="The head's bias for the label (exact) or the logit of an "
                                    "all-padding input (approximate).")
    exact: bool = Field(description="true: bias + every window's contribution = logit; false: "
                                    "integrated gradients, approximately so.")
    method: str
    windows: list[Window] = Field(description=(
        "top_k windows, largest contribution first: tokens start .. end - 1, the input's "
        "characters char_start .. char_end - 1 (text), and what they add to the logit."))
    token_attributions: list[float] = Field(description="One per token; bias + their sum = "
                                                        "logit (when exact).")


class TextExplanation(BaseModel):
    text: str
    tokens: list[Token]
    heads: dict[str, HeadExplanation]


class ExplainResponse(BaseModel):
    explanations: list[TextExplanation] = Field(
        description="One entry per input text, in order.")
