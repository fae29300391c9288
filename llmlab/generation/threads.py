"""How many CPU threads a decode step uses: chosen by timing the steps, not by the core count.

One cached token of a small model is a chain of a few hundred small operations, each one
parallel region of torch's OpenMP pool. With every core free, two threads read the weights
faster than one. With any other work on the machine (a browser, a training thread, a second
kernel), each region waits at its barrier for a thread that the OS has not scheduled: on a
2-core machine with one busy core a 2-thread token took 10-40x as long as a 1-thread one
(profile in ``benchmarks/README.md``). No fixed count is right for both, and the load changes
while a notebook runs, so :class:`ThreadPolicy` measures: it decodes at the most threads it
may use, now and then times a few tokens at another count, and keeps whichever is faster.
A probe that is clearly losing stops after one token, and a lost probe at least doubles the
wait for the next, long enough that probing costs under :data:`PROBE_BUDGET` of the time
(one 2-thread token on a busy 2-core machine can cost 30 one-thread ones). Tokens that turn
:data:`SLOWDOWN` times slower than when the count was last confirmed (a training started
beside it) end the wait at once.

:class:`DecodeThreads` applies a policy to generation: it sets the chosen count only around
the work of a step (the caller's code between streamed tokens runs at the count it set) and
keeps one policy per model shape, batch size and thread count, so the next call goes on
from what this one learnt.
``torch.set_num_threads`` acts on the calling thread's pool, so a training in another thread
keeps its own count.

>>> policy = ThreadPolicy((2, 1))
>>> for _ in range(40):  # one thread is 3x faster on this (pretend) busy machine
...     policy.observe(0.003 if policy.threads == 1 else 0.009)
>>> policy.threads
1
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections import deque
from collections.abc import Iterator

import torch

FIRST_WAIT = 4  # tokens before the first probe
MAX_WAIT = 4096  # most tokens between probes
PROBE_BUDGET = 0.01  # the share of decode time that lost probes may cost
PROBE_TOKENS = 3  # tokens timed at the other count
WIN = 0.9  # a probe wins when its median token is under 90% of the current one's
CLEAR_LOSS = 1.5  # a probe token this much slower than the current median ends the probe
SLOWDOWN = 1.5  # tokens at the chosen count this much slower than when chosen: probe now


def candidates(most: int) -> tuple[int, ...]:
    """Thread counts worth trying: ``most``, then halving down to 1.

    >>> candidates(8), candidates(2), candidates(1)
    ((8, 4, 2, 1), (2, 1), (1,))
    """
    if most < 1:
        raise ValueError(f"the thread count must be at least 1, got {most}; "
                         "pass torch.set_num_threads a positive number")
    counts = [most]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return tuple(counts)


class ThreadPolicy:
    """Which of ``options`` to run the next token at, from the times of the tokens so far.

    ``observe(seconds)`` reports the token just run at :attr:`threads`.
    """

    def __init__(self, options: tuple[int, ...]):
        if not options:
            raise ValueError("ThreadPolicy needs at least one thread count")
        self.options = options
        self.current = options[0]
        self.recent: deque[float] = deque(maxlen=5)  # token times at `current`
        self.settled: float | None = None  # median token time when `current` was last confirmed
        self.wait = FIRST_WAIT
        self.countdown = FIRST_WAIT
        self.probe: int | None = None  # the count being tried, while a probe runs
        self.probe_times: list[float] = []
        self.next_alternative = 0

    @property
    def threads(self) -> int:
        """The thread count for the next token."""
        return self.current if self.probe is None else self.probe

    def observe(self, seconds: float) -> None:
        """Record the time of the token that just ran at :attr:`threads`."""
        if self.probe is not None:
            self._observe_probe(seconds)
            return
        self.recent.append(seconds)
        self.countdown -= 1
        if self._slowed_down():  # the load changed: what was learnt no longer holds
            self.wait, self.countdown = FIRST_WAIT, 0
        if self.countdown <= 0 and len(self.recent) >= 3 and len(self.options) > 1:
            self._start_probe()

    def _slowed_down(self) -> bool:
        full = len(self.recent) == self.recent.maxlen
        return (self.settled is not None and full
                and statistics.median(self.recent) > SLOWDOWN * self.settled)

    def _start_probe(self) -> None:
        others = [n for n in self.options if n != self.current]
        self.probe = others[self.next_alternative % len(others)]
        self.next_alternative += 1
        self.probe_times = []

    def _observe_probe(self, seconds: float) -> None:
        self.probe_times.append(seconds)
        now = statistics.median(self.recent)
        if seconds > CLEAR_LOSS * now:
            self._end_probe(won=False, now=now)
        elif len(self.probe_times) == PROBE_TOKENS:
            self._end_probe(won=statistics.median(self.probe_times) < WIN * now, now=now)

    def _end_probe(self, won: bool, now: float) -> None:
        if won:
            self.current = self.probe
            self.recent = deque(self.probe_times, maxlen=self.recent.maxlen)
            self.settled = statistics.median(self.probe_times)
            self.wait = FIRST_WAIT  # the load just changed: look again soon
        else:
            self.settled = now
            lost = sum(self.probe_times) - now * len(self.probe_times)  # time the probe cost
            affordable = math.ceil(lost / (PROBE_BUDGET * now))
            self.wait = min(max(2 * self.wait, affordable), MAX_WAIT)
        self.probe = None
        self.countdown = self.wait


# (model shape, batch size, thread counts) -> its policy, which the next generation goes on with
_POLICIES: dict[tuple, ThreadPolicy] = {}


class DecodeThreads:
    """A :class:`ThreadPolicy` applied around the steps of one generation.

    ``with threads.work(): ...`` runs a piece of a token's work at the chosen count and adds
    its time to the token; ``threads.token_done()`` hands the token's time to the policy.
    On a GPU, or with one thread allowed, it changes nothing.
    """

    def __init__(self, model: torch.nn.Module, batch_size: int):
        self.most = torch.get_num_threads()
        on_cpu = next(model.parameters()).device.type == "cpu"
        options = candidates(self.most) if on_cpu else (self.most,)
        c = model.config
        key = (type(model).__name__, c.n_layer, c.d_model, c.vocab_size, batch_size, options)
        self.policy = _POLICIES.setdefault(key, ThreadPolicy(options))
        self.elapsed = 0.0

    @property
    def threads(self) -> int:
        """The count the next piece of work runs at."""
        return self.policy.threads

    @contextlib.contextmanager
    def work(self, timed: bool = True) -> Iterator[None]:
        """Run the block at the chosen thread count (timed, as part of the current token,
        unless ``timed=False``: a prefill, which runs at the settled count, never a probe's);
        the count is restored after."""
        n = self.policy.threads if timed else self.policy.current
        if n != self.most:
            torch.set_num_threads(n)
        start = time.perf_counter()
        try:
            yield
        finally:
            if timed:
                self.elapsed += time.perf_counter() - start
            if n != self.most:
                torch.set_num_threads(self.most)

    def token_done(self) -> None:
        """The token's work is over: let the policy see its time."""
        if len(self.policy.options) > 1:
            self.policy.observe(self.elapsed)
        self.elapsed = 0.0
