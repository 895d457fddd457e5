"""``POST /v1/explain``: :meth:`TextClassifier.explain` over HTTP, with /v1/classify's limits.

The body is ``{"texts": [...], "top_k": 5, "head": null}``; the answer is
``{"explanations": [one per text: {text, tokens, heads: {head: {label, score, logit, bias,
exact, method, windows, token_attributions}}}]}`` (:class:`~.schemas.ExplainResponse`). Body
size, UTF-8, content-type, ``max_texts`` and ``max_chars`` are checked exactly as for
``/v1/classify`` and answer in the same error shape. Explanations are not micro-batched: each
request runs alone in one worker thread, beside the batcher's forward passes.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from .app import ClassifyEndpoint
from .batcher import MicroBatcher
from .errors import error_body
from .gate import json_bytes
from .schemas import ExplainResponse, explain_request_model
from .settings import ServeSettings

__all__ = ["ExplainEndpoint", "ExplainResponse"]


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
            self.executor, self.classifier.explain, body.texts, body.head, body.top_k)
        return 200, json_bytes({"explanations": rows}), None

