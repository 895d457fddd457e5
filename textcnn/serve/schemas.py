"""The JSON the service reads and writes: pydantic request and response models.

The models carry no class docstrings on purpose: pydantic copies a model's docstring into its
JSON schema, so it would become part of ``/openapi.json``.
"""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

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
    """The ``/v1/classify`` body, with this server's limits in its JSON schema.

    Parameters
    ----------
    settings : ServeSettings
        Gives ``max_texts`` (items of ``texts``) and ``max_chars`` (characters per text).

    Returns
    -------
    type[BaseModel]
        ``ClassifyRequest``: ``texts`` (1 to ``max_texts`` strings) and ``top_k`` (>= 1,
        default 1); any other field is an error.
    """
    text = Annotated[str, Field(max_length=settings.max_chars), AfterValidator(_valid_unicode)]
    return create_model(
        "ClassifyRequest",
        __config__=ConfigDict(extra="forbid"),
        texts=(list[text], Field(min_length=1, max_length=settings.max_texts,
                                 description="Texts to classify (empty strings are fine).")),
        top_k=(Annotated[int, BeforeValidator(_no_bool_or_str)],
               Field(1, ge=1, description="Labels per head, best first.")),
    )
