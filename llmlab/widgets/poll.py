"""``Poller``: call a function every few seconds in a background thread, until it says stop.

Widgets that show what another thread or process writes into the run store (a followed
training, the run history while a run is running) read it again on a timer; the kernel stays
free for other cells. ``tick`` returns True to be called again, False when there is nothing
left to follow.

>>> import threading
>>> seen = threading.Event()
>>> poller = Poller(lambda: seen.set() and False, interval=0.01)
>>> poller.start(); seen.wait(5)
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Poller:
    """Runs ``tick()`` at once and then every ``interval`` seconds in one daemon thread,
    until ``tick`` returns False or :meth:`stop` is called; :meth:`start` again restarts it."""

    def __init__(self, tick: Callable[[], bool], interval: float, *, name: str = "llmlab-poll"):
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            raise ValueError(f"the poll interval must be a positive number of seconds, got "
                             f"{interval!r}")
        self.tick, self.interval, self.name = tick, float(interval), name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True while the thread polls."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start polling (nothing happens when it already polls)."""
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=self.name,
                                        daemon=True)
        self._thread.start()

    def stop(self, wait: float | None = None) -> None:
        """Stop after the current tick; ``wait`` seconds at most for the thread to end."""
        self._stop.set()
        thread = self._thread
        if wait is not None and thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and self.tick():
            stop.wait(self.interval)
