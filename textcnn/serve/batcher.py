"""Micro-batching: concurrent requests share one forward pass, each answered with its own rows."""

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import ForwardFailed, ShuttingDown, Unavailable

log = logging.getLogger("textcnn.serve")


@dataclass
class PendingRequest:
    """A request waiting for a forward pass: its texts, its ``top_k`` and where its answer goes."""

    texts: list[str]
    top_k: int
    future: asyncio.Future


class MicroBatcher:
    """Gather concurrent requests into one forward pass and answer each with its own rows.

    Parameters
    ----------
    predict : callable
        ``predict(texts, top_k) -> one result per text``; runs in a worker thread.
    max_batch_size : int
        Texts per forward pass (a request is never split; a larger one runs alone).
    max_wait_ms : float
        Longest the first request of a batch waits for company. The wait ends early when the
        batch is full or when ``arriving()`` says no other request is being received.
    arriving : callable, optional
        Number of requests that have arrived but are not yet queued.
    whole_heads : collection of str
        Heads whose answer does not depend on ``top_k`` (multi-label: every label over its
        threshold); never cut to a request's ``top_k``.

    Failures stay with the requests they hit: anything the forward pass raises (even a
    ``BaseException`` such as a tokenizer's ``PanicException``) fails the requests of that
    batch (each is retried alone first, so one bad text fails only its own request) and the
    worker goes on. When the worker cannot run forward passes at all (its thread cannot be
    started, or the worker itself stopped), :attr:`healthy` is False and new submissions raise
    :class:`Unavailable`.
    """

    def __init__(self, predict: Callable[[list[str], int], list], max_batch_size: int = 64,
                 max_wait_ms: float = 5.0, arriving: Callable[[], int] | None = None,
                 whole_heads: Collection[str] = ()):
        self.predict = predict
        self.whole_heads = frozenset(whole_heads)
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.arriving = arriving or (lambda: 1)
        self.requests = 0  # requests submitted
        self.batches = 0  # forward passes run
        self.batched_texts = 0  # texts they held
        self._pending: deque[PendingRequest] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.closing = False
        self.failure: BaseException | None = None  # why the worker cannot run, if it cannot
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="textcnn-forward")

    async def start(self) -> None:
        """Start the worker task (in the running event loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._serve_batches(), name="textcnn-batcher")
        self._task.add_done_callback(self._worker_stopped)

    @property
    def healthy(self) -> bool:
        """The worker is running and its last forward pass could be started."""
        return self._task is not None and not self._task.done() and self.failure is None

    def _worker_stopped(self, task: asyncio.Task) -> None:
        """Fail what is still queued when the worker stops for any reason but :meth:`stop`."""
        if self.closing:
            return
        self.failure = (task.exception() if not task.cancelled() else None) or \
            RuntimeError("the micro-batcher's worker stopped")
        log.error("the micro-batcher's worker stopped: %r", self.failure)
        while self._pending:
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_exception(Unavailable(str(self.failure)))

    async def stop(self) -> None:
        """Answer everything queued, then stop; later submissions raise :class:`ShuttingDown`."""
        self.closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await asyncio.wait([self._task])  # a worker that died has nothing left to drain
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str], top_k: int = 1) -> tuple[list, int]:
        """Results for ``texts`` and the number of texts in the forward pass that made them.

        Raises
        ------
        ShuttingDown
            The batcher is stopping (or was never started).
        Unavailable
            The worker has stopped.
        ForwardFailed
            The forward pass failed on these texts.
        """
        if self.closing or self._task is None:
            raise ShuttingDown
        if self._task.done():
            raise Unavailable(str(self.failure))
        future = asyncio.get_running_loop().create_future()
        self.requests += 1
        self._pending.append(PendingRequest(texts, top_k, future))
        self._wake.set()
        return await future

    def _take_pending(self, batch: list[PendingRequest], n_texts: int) -> int:
        """Move queued requests into ``batch`` while they fit; the batch's new text count."""
        limit = self.max_batch_size
        while self._pending and (not batch or n_texts + len(self._pending[0].texts) <= limit):
            request = self._pending.popleft()
            batch.append(request)
            n_texts += len(request.texts)
        return n_texts

    async def _gather_batch(self) -> list[PendingRequest]:
        """The next batch: waits for a first request, then up to ``max_wait`` for company."""
        while not self._pending:
            if self.closing:
                return []
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        batch: list[PendingRequest] = []
        n_texts = self._take_pending(batch, 0)
        while n_texts < self.max_batch_size and not self._pending and not self.closing \
                and self.arriving() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                break
            n_texts = self._take_pending(batch, n_texts)
        return batch

    async def _serve_batches(self) -> None:
        """The worker: gather a batch, run it, answer each request; until stopped and drained."""
        while True:
            batch = await self._gather_batch()
            if not batch:
                return
            try:
                results = await self._run(batch)
                self.failure = None
            except Exception as exc:  # noqa: BLE001 - the forward pass could not even start
                log.error("cannot run a forward pass: %r", exc)
                self.failure = exc
                results = [Unavailable(f"cannot run a forward pass: {exc!r}") for _ in batch]
            size = sum(len(r.texts) for r in batch)
            self.batches += 1
            self.batched_texts += size
            for request, result in zip(batch, results):
                if request.future.done():  # the client went away
                    continue
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result((result, size))

    async def _run(self, batch: list[PendingRequest]) -> list:
        """Each request's rows, or the :class:`ForwardFailed` that stopped it.

        A failed batch is run again one request at a time, so that a text that breaks the
        forward pass fails its own request only.
        """
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._executor, self._contained_forward, batch)
        if not isinstance(rows, ForwardFailed):
            return rows
        if len(batch) == 1:
            return [rows]
        out = []
        for request in batch:
            alone = await loop.run_in_executor(self._executor, self._contained_forward, [request])
            out.append(alone if isinstance(alone, ForwardFailed) else alone[0])
        return out

    def _contained_forward(self, batch: list[PendingRequest]) -> list | ForwardFailed:
        """:meth:`_forward`, with whatever it raises returned as a :class:`ForwardFailed`
        (this runs in the worker thread: nothing it raises may reach the event loop)."""
        try:
            return self._forward(batch)
        except BaseException as exc:  # noqa: BLE001 - e.g. a PanicException from the tokenizer
            log.error("the forward pass failed on %d text(s)",
                      sum(len(r.texts) for r in batch), exc_info=exc)
            failed = ForwardFailed(f"the forward pass failed ({type(exc).__name__})")
            failed.__cause__ = exc
            return failed

    def _forward(self, batch: list[PendingRequest]) -> list:
        """One forward pass over every text of ``batch``; the rows of each request."""
        texts = [t for request in batch for t in request.texts]
        top_k = max(request.top_k for request in batch)
        # a 1-row forward takes another kernel path (gemv) than a batch does; 2 rows make a
        # text's scores bit-identical whether it came alone or in a batch
        rows = self.predict(texts * 2 if len(texts) == 1 else texts, top_k)
        out, start = [], 0
        for request in batch:
            part = rows[start:start + len(request.texts)]
            start += len(request.texts)
            if request.top_k < top_k:  # top-k is a stable sort: a smaller k is a prefix
                part = [{h: labels if h in self.whole_heads else labels[:request.top_k]
                         for h, labels in row.items()} for row in part]
            out.append(part)
        return out
