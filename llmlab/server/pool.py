"""The bounded worker pool that runs the server's file reads off the tornado event loop.

Every read of the run store (manifests, metrics parts, snapshots, saved configs) goes through
:meth:`ReadPool.run`, so a slow disk or a file that blocks can only tie up a worker, never the
event loop that answers ``GET version``, ``api/status`` and the rest of Jupyter:

>>> pool = ReadPool(workers=2, timeout=5.0)
>>> asyncio.run(pool.run(sum, [1, 2]))
3

:class:`SharedReads` lets overlapping requests for the same read (four users refreshing the
run listing of one store) share one read instead of running four at once.

The workers are daemon threads, started on first use: a read stuck for good (a FIFO opened by
code that does not refuse one) cannot keep the server from exiting. A read that outlives the
timeout raises :class:`ReadTimeout` (its worker finishes it in the background); reads still
queued when their request gives up are dropped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["DEFAULT_TIMEOUT", "DEFAULT_WORKERS", "ReadPool", "ReadTimeout", "SharedReads"]

T = TypeVar("T")

#: Worker threads of the pool (reads mostly wait on the disk or release the GIL in polars).
DEFAULT_WORKERS = 4
#: Seconds a request waits for its read before the server answers 504.
DEFAULT_TIMEOUT = 20.0


class ReadTimeout(TimeoutError):
    """A read that did not finish within the pool's timeout."""


class ReadPool:
    """``workers`` daemon threads sharing one queue; :meth:`run` awaits one call on them."""

    def __init__(self, workers: int = DEFAULT_WORKERS, timeout: float = DEFAULT_TIMEOUT) -> None:
        if workers < 1 or not timeout > 0:
            raise ValueError(f"ReadPool needs workers >= 1 and timeout > 0 (got {workers}, "
                             f"{timeout})")
        self.workers = workers
        self.timeout = timeout
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future:
        """Queue ``fn(*args)``; a :class:`concurrent.futures.Future` of its result."""
        self._start()
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker; :class:`ReadTimeout` after ``timeout`` seconds."""
        future = asyncio.wrap_future(self.submit(fn, *args))
        try:
            return await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            raise ReadTimeout(f"the read took longer than {self.timeout:g} s") from None

    def _start(self) -> None:
        if len(self._threads) == self.workers:
            return
        with self._lock:
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"llmlab-read-{len(self._threads)}")
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue  # its request gave up while it waited in the queue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
                future.set_exception(exc)


class SharedReads:
    """Overlapping reads of one key share a result, and nobody gets a stale one: a caller
    joins the read queued to start next (after the one running now, which may have begun
    before the caller arrived), so at most one read per key runs at a time.

    >>> async def main():
    ...     shared, calls = SharedReads(), []
    ...     async def read():
    ...         calls.append(1)
    ...         await asyncio.sleep(0.05)
    ...         return len(calls)
    ...     first = asyncio.ensure_future(shared.run("k", read))
    ...     await asyncio.sleep(0.01)  # the first read has started: later callers queue
    ...     later = await asyncio.gather(*[shared.run("k", read) for _ in range(3)])
    ...     return [await first, *later]
    >>> asyncio.run(main())
    [1, 2, 2, 2]
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task] = {}
        self._queued: dict[Hashable, asyncio.Task] = {}

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """The result of a ``read()`` for ``key`` that starts no earlier than this call."""
        task = self._queued.get(key)
        if task is None:
            previous = self._running.get(key)
            task = asyncio.ensure_future(self._start_after(key, previous, read))
            self._queued[key] = task
        return await asyncio.shield(task)

    async def _start_after(self, key: Hashable, previous: asyncio.Task | None,
                           read: Callable[[], Awaitable[T]]) -> T:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is for its own callers
        me = asyncio.current_task()
        if self._queued.get(key) is me:
            del self._queued[key]
        self._running[key] = me
        try:
            return await read()
        finally:
            if self._running.get(key) is me:
                del self._running[key]
