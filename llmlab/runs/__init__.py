"""The run store: every training, inspection and calibration run as a folder on disk.

The folder layout is the contract between the kernel (which writes runs) and the server
extension and widgets (which read them with polars); ``docs/run-store.md`` documents it.

>>> import llmlab.runs
>>> with llmlab.runs.create(name="baseline", training={"lr": 3e-4}) as run:
...     run.log_metrics({"train/loss": 2.5}, step=1)
>>> llmlab.runs.get(run.id).metrics            # one row per step, a column per metric
>>> llmlab.runs.list()                         # one row per run, newest first
>>> llmlab.runs.reproduce(run_id).matches      # rerun a finished run from its manifest
>>> llmlab.runs.get(run_id).consolidate("out/")   # a (sharded) checkpoint as one folder

The store is ``./llmlab-runs`` unless ``store=`` or ``$LLMLAB_RUNS_DIR`` says otherwise.
Importing this module loads neither polars, torch nor accelerate.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from llmlab.runs.consolidate import consolidate
from llmlab.runs.layout import (
    CHECKPOINT_COMPLETE,
    FORMAT,
    FORMAT_VERSION,
    STATUSES,
    InvalidRunIdError,
    RunLockedError,
    RunNotFoundError,
    RunStoreError,
    RunStoreWarning,
    is_valid_run_id,
)
from llmlab.runs.run import Run
from llmlab.runs.store import RunStore

if TYPE_CHECKING:
    import polars as pl

    from llmlab.runs.tracker import RunTracker
    from llmlab.train.reproduce import Reproduction, reproduce  # noqa: F401

__all__ = [
    "CHECKPOINT_COMPLETE", "FORMAT", "FORMAT_VERSION", "STATUSES", "InvalidRunIdError",
    "Reproduction", "Run", "RunLockedError", "RunNotFoundError", "RunStore", "RunStoreError", "RunStoreWarning",
    "RunTracker", "compare", "consolidate", "create", "delete", "get", "is_valid_run_id", "list", "reproduce",
    "runs",
]

StoreLike = RunStore | str | os.PathLike | None



def _store(store: StoreLike) -> RunStore:
    return store if isinstance(store, RunStore) else RunStore(store)


# `list` shadows the builtin here on purpose (llmlab.runs.list()); use builtins.list below.
def list(store: StoreLike = None) -> pl.DataFrame:
    """Table of the runs in ``store``, newest first (see ``RunStore.list``).

    >>> llmlab.runs.list().filter(pl.col("status") == "finished")
    """
    return _store(store).list()


def runs(store: StoreLike = None) -> builtins.list[Run]:
    """Every run in ``store`` as :class:`Run` objects, newest first."""
    return _store(store).runs()


def get(run_id: str, store: StoreLike = None) -> Run:
    """The run ``run_id`` in ``store``.

    >>> llmlab.runs.get("20261123-071800-3f9a2c").metrics
    """
    return _store(store).get(run_id)


def compare(run_ids: str | Iterable[str], metric: str = "train/loss",
            store: StoreLike = None) -> pl.DataFrame:
    """Long table ``run_id, step, value`` of ``metric`` for the given runs.

    >>> llmlab.runs.compare([a.id, b.id], "val/loss")
    """
    return _store(store).compare(run_ids, metric)


def create(*, store: StoreLike = None, **fields: Any) -> Run:
    """Create a run in ``store``; ``fields`` are those of :meth:`RunStore.create`.

    >>> run = llmlab.runs.create(name="tiny", config=cfg, seed=0)
    """
    return _store(store).create(**fields)


def delete(run_id: str, store: StoreLike = None, *, force: bool = False) -> None:
    """Delete the run ``run_id`` (``force=True`` for one still running)."""
    _store(store).delete(run_id, force=force)


def __getattr__(name: str) -> Any:
    """Names whose modules load heavy parts, imported on first use: ``RunTracker``
    (accelerate and torch), and ``reproduce`` / ``Reproduction``, which live with training
    (``llmlab.train.reproduce``) so that the run store never imports the trainer."""
    if name == "RunTracker":
        from llmlab.runs.tracker import RunTracker

        globals()[name] = RunTracker
        return RunTracker
    if name in ("reproduce", "Reproduction"):
        from llmlab.train import reproduce as module

        globals()[name] = getattr(module, name)
        return globals()[name]
    raise AttributeError(f"module 'llmlab.runs' has no attribute {name!r}")

