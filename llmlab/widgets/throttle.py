"""``Throttle``: run an update at most a few times a second, and once more at the end.

Training steps can come hundreds of times a second; a notebook front end wants a few
updates a second (Jupyter drops output past its IOPub rate limit). A throttle sits between
the two: every request is remembered, at most one per ``interval`` runs the action, and
``flush()`` runs the last one that was held back.

>>> ticks = iter([0.0, 0.1, 0.2, 0.6])
>>> sent = []
>>> throttle = Throttle(lambda: sent.append("update"), interval=0.5, clock=lambda: next(ticks))
>>> [throttle() for _ in range(3)], throttle.pending
([True, False, False], True)
>>> throttle.flush(), sent
(True, ['update', 'update'])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds between two updates of a widget: four a second at most.
DEFAULT_INTERVAL = 0.25


class Throttle:
    """Calls ``action`` at most once per ``interval`` seconds of ``clock``.

    Calling the throttle asks for an update: the action runs now if ``interval`` has passed
    since it last ran, otherwise the request stays ``pending`` until the next call that is
    late enough or until :meth:`flush`. Safe to call from a training thread and the kernel's
    main thread at once (the action never runs twice concurrently).
    """

    def __init__(self, action: Callable[[], object], interval: float = DEFAULT_INTERVAL, *,
                 clock: Callable[[], float] = time.monotonic):
        if not interval >= 0:
            raise ValueError(f"interval must be a number of seconds >= 0, got {interval!r}")
        self.action, self.interval, self.clock = action, float(interval), clock
        self.pending = False
        self._last: float | None = None
        self._lock = threading.RLock()

    def __call__(self) -> bool:
        """Ask for an update; True when the action ran now."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                self.pending = True
                return False
            self._run(now)
            return True

    def flush(self) -> bool:
        """Run the held-back update, if any; True when the action ran."""
        with self._lock:
            if not self.pending:
                return False
            self._run(self.clock())
            return True

    def _run(self, now: float) -> None:
        self.pending = False
        self._last = now
        self.action()
