"""Names, ids and errors of the run store's on-disk layout (see ``docs/run-store.md``).

Everything here is stdlib only, so the server can validate paths without loading polars.

>>> is_valid_run_id("20261123-071800-3f9a2c"), is_valid_run_id("../etc")
(True, False)
>>> checkpoint_name(100)
'step-00000100'
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

from llmlab.errors import (  # noqa: F401 - importable from here, as before
    InvalidRunFieldError,
    InvalidRunIdError,
    RunLockedError,
    RunNotFoundError,
    RunStoreError,
    RunStoreWarning,
)

#: ``manifest.json["format"]`` of every run folder.
FORMAT = "llmlab-run"
#: Bumped only when an older reader would misread a newer run (see the docs' version policy).
FORMAT_VERSION = 2

MANIFEST_FILE = "manifest.json"
METRICS_DIR = "metrics"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
ARTIFACTS_DIR = "artifacts"
#: File a checkpoint folder holds once it is complete; the trainer writes it last.
CHECKPOINT_COMPLETE = "COMPLETE"

#: Statuses a manifest may hold. Readers also report "corrupt" (unreadable manifest).
STATUSES = ("running", "finished", "failed", "interrupted")
CORRUPT = "corrupt"

#: Environment variable naming the default store folder.
ENV_VAR = "LLMLAB_RUNS_DIR"
DEFAULT_DIR = "llmlab-runs"

# ASCII only: \d would also accept other scripts' digits.
_RUN_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}", re.ASCII)
_CHECKPOINT = re.compile(r"step-([0-9]{8,})", re.ASCII)


def is_valid_run_id(value: object) -> bool:
    """True when ``value`` is a run id: ``YYYYMMDD-HHMMSS-xxxxxx`` (UTC time, 6 hex digits).

    >>> is_valid_run_id("20261123-071800-3f9a2c")
    True
    """
    return isinstance(value, str) and _RUN_ID.fullmatch(value) is not None


def check_run_id(value: object) -> str:
    """Return ``value`` when it is a valid run id, else raise :class:`InvalidRunIdError`.

    >>> check_run_id("20261123-071800-3f9a2c")
    '20261123-071800-3f9a2c'
    """
    if not is_valid_run_id(value):
        raise InvalidRunIdError(
            f"{value!r} is not a run id; ids look like '20261123-071800-3f9a2c' "
            "(see llmlab.runs.list() for the ids in a store)")
    return value  # type: ignore[return-value]


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: UTC time to the second, then 24 random bits.

    >>> is_valid_run_id(new_run_id())
    True
    """
    now = now or datetime.now(timezone.utc)
    return f"{now.astimezone(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_id_time(run_id: str) -> str:
    """The creation time encoded in a run id, as ISO-8601 UTC (``...Z``).

    >>> run_id_time("20261123-071800-3f9a2c")
    '2026-11-23T07:18:00.000Z'
    """
    t = datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds, e.g. ``2026-11-23T07:18:00.123Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: object) -> float | None:
    """Unix seconds of an ISO-8601 time written by :func:`now_iso`; None when unparsable."""
    if not isinstance(text, str):
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=t.tzinfo or timezone.utc).timestamp()


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint at ``step``: ``step-`` and at least 8 digits."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InvalidRunFieldError(f"checkpoint step must be a non-negative int, got {step!r}")
    return f"step-{step:08d}"


def checkpoint_step(name: str) -> int | None:
    """The step of a checkpoint folder name, or None when ``name`` is not one."""
    m = _CHECKPOINT.fullmatch(name)
    return int(m.group(1)) if m else None


def resolve_store_path(path: str | os.PathLike | None = None) -> Path:
    """The store folder: ``path``, else ``$LLMLAB_RUNS_DIR``, else ``./llmlab-runs`` (absolute).

    >>> resolve_store_path("/tmp/my-runs").name
    'my-runs'
    """
    chosen = path if path is not None else (os.environ.get(ENV_VAR) or DEFAULT_DIR)
    return Path(chosen).expanduser().absolute()
