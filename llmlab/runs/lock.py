"""The writer lock of a run: an OS file lock that one process holds while it writes the run.

A second writer fails at once with the pid and host of the first. The lock dies with its
process, so a crashed writer's lock is taken over by the next one without any clean-up.
On systems without ``fcntl`` (Windows) the lock is a no-op.

>>> import tempfile
>>> lock = WriterLock(Path(tempfile.mkdtemp()), "20261123-071800-3f9a2c")
>>> lock.acquire(); lock.held
True
>>> lock.release(); lock.held
False
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from llmlab.runs.layout import RunLockedError, now_iso

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Hidden file in the run folder that carries the lock (and, for messages, its holder).
LOCK_FILE = ".writer.lock"
_HOLDER_BYTES = 4096


class WriterLock:
    """The lock on the run folder ``folder`` (run id ``run_id`` for messages)."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.run_id = run_id
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLockedError` naming the process that holds it."""
        if self._fd is not None or fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"run {self.run_id} is being written by pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} (since {holder.get('since', '?')}); wait for it to "
                "finish or stop that process, then try again") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the lock go (closing the descriptor releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
