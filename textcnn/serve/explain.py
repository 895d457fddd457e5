"""``POST /v1/explain``: :meth:`TextClassifier.explain` over HTTP, with /v1/classify's limits.

The body is ``{"texts": [...], "top_k": 5, "head": null}``; the answer is
``{"explanations": [one per text: {text, tokens, heads: {head: {label, score, logit, bias,
exact, method, windows, token_attributions}}}]}`` (:class:`~.schemas.ExplainResponse`). Body
size, UTF-8, content-type, ``max_texts`` and ``max_chars`` are checked exactly as for
``/v1/classify`` and answer in the same error shape. Explanations are not micro-batched: each
request runs alone in one worker thread, beside the batcher's forward passes.
"""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from .batcher import MicroBatcher
from .endpoint import ClassifyEndpoint
from .errors import ForwardFailed, error_body
from .gate import json_bytes
from .schemas import ExplainResponse, explain_request_model
from .settings import ServeSettings

__all__ = ["ExplainEndpoint", "ExplainResponse"]
log = logging.getLogger("textcnn.serve")


class ExplainEndpoint(ClassifyEndpoint):
    """The implementation of ``POST /v1/explain`` (parsing and errors as ``/v1/classify``).

    Parameters
    ----------
    settings : ServeSettings
    batcher : MicroBatcher
        Only asked whether the server is shutting down.
    classifier : TextClassifier
        What explains.
    """

    def __init__(self, settings: ServeSettings, batcher: MicroBatcher, classifier):
        super().__init__(settings, batcher)
        self.classifier = classifier
        self.body_model = explain_request_model(settings, list(classifier.heads))
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="textcnn-explain")

    async def run(self, body) -> tuple[int, bytes, int | None]:
        if self.batcher.closing:
            return 503, json_bytes(error_body([], "the server is shutting down",
                                              "shutting_down")), None
        rows = await asyncio.get_running_loop().run_in_executor(
            self.executor, self._contained_explain, body)
        if isinstance(rows, ForwardFailed):
            return 500, json_bytes(error_body(
                [], f"{rows}; the server log has the details", "forward_failed")), None
        return 200, json_bytes({"explanations": rows}), None

    def _contained_explain(self, body) -> list | ForwardFailed:
        """The explanations, or whatever stopped them as a :class:`ForwardFailed` (a tokenizer's
        ``PanicException`` included), answered as ``/v1/classify`` answers a failed pass."""
        try:
            return self.classifier.explain(body.texts, body.head, body.top_k)
        except BaseException as exc:  # noqa: BLE001 - runs in the worker thread
            log.error("the explanation failed on %d text(s)", len(body.texts), exc_info=exc)
            return ForwardFailed(f"the explanation failed ({type(exc).__name__})")

