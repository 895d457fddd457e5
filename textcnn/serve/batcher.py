"""Micro-batching: concurrent requests share one forward pass, each answered with its own rows."""

import asyncio
from collections import deque
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import ShuttingDown


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
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="textcnn-forward")

    async def start(self) -> None:
        """Start the worker task (in the running event loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._serve_batches(), name="textcnn-batcher")

    async def stop(self) -> None:
        """Answer everything queued, then stop; later submissions raise :class:`ShuttingDown`."""
        self.closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str], top_k: int = 1) -> tuple[list, int]:
        """Results for ``texts`` and the number of texts in the forward pass that made them.

        Raises
        ------
        ShuttingDown
            The batcher is stopping (or was never started).
        """
        if self.closing or self._task is None:
            raise ShuttingDown
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
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather_batch()
            if not batch:
                return
            try:
                results = await loop.run_in_executor(self._executor, self._forward, batch)
            except Exception:  # noqa: BLE001 - isolate the request that broke the batch
                results = []
                for request in batch:
                    try:
                        results.append((await loop.run_in_executor(
                            self._executor, self._forward, [request]))[0])
                    except Exception as exc:  # noqa: BLE001
                        results.append(exc)
            size = sum(len(r.texts) for r in batch)
            self.batches += 1
            self.batched_texts += size
            for request, result in zip(batch, results):
                if request.future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    request.future.set_exception(result)
                else:
                    request.future.set_result((result, size))

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
