"""One run: its manifest, buffered metric and sample logging, checkpoints and artifacts.

>>> import tempfile
>>> from llmlab.runs import RunStore
>>> with RunStore(tempfile.mkdtemp()).create(name="demo") as run:
...     run.log_metrics({"train/loss": 2.5}, step=1)
>>> run.status, run.metrics["train/loss"].to_list()
('finished', [2.5])
"""

from __future__ import annotations

import atexit
import operator
import os
import socket
import threading
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmlab.runs import checkpoints, parts
from llmlab.runs.layout import (
    ARTIFACTS_DIR,
    CHECKPOINT_COMPLETE,
    CHECKPOINTS_DIR,
    CORRUPT,
    METRICS_DIR,
    SAMPLES_DIR,
    STATUSES,
    RunStoreError,
    RunStoreWarning,
    checkpoint_name,
    checkpoint_step,
    now_iso,
)
from llmlab.runs.lock import WriterLock
from llmlab.runs.manifest import (
    CHECKSUMS_SINCE,
    FROZEN_FIELDS,
    effective_status,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    import polars as pl

    from llmlab.config import ModelConfig
    from llmlab.runs.store import RunStore

#: Buffered rows that force a flush whatever the time (bounds memory between flushes).
MAX_BUFFERED_ROWS = 50_000
#: Single part files that trigger a compaction into one range file.
COMPACT_EVERY = 128


class Run:
    """A run folder in a :class:`RunStore`. Reading is always safe; one process writes a run.

    Get one from ``store.create(...)`` (to write) or ``store.get(run_id)`` (to read).
    ``log_metrics`` buffers rows and flushes them as a new part file once
    ``auto_flush_seconds`` have passed since the last flush (None: only on ``flush()``).

    >>> run = RunStore(tempfile.mkdtemp()).create()
    >>> run.log_metrics({"lr": 1e-3}, step=0); run.flush(); run.metrics.columns
    ['step', 'lr']
    """

    def __init__(self, store: RunStore, run_id: str, *, auto_flush_seconds: float | None = 2.0,
                 compact_every: int = COMPACT_EVERY) -> None:
        self.store = store
        self.id = run_id
        self.path: Path = Path(store.path) / run_id
        self.auto_flush_seconds = auto_flush_seconds
        self.compact_every = compact_every
        self._lock = threading.Lock()
        self._metrics: list[tuple[int, str, float, float]] = []
        self._samples: list[tuple[int, str, str, float]] = []
        self._last_flush = time.monotonic()
        self._exit_hook = False
        self._writer = WriterLock(self.path, run_id)

    def __repr__(self) -> str:
        return f"Run({self.id!r}, name={self.name!r}, status={self.status!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- manifest ---------------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest, read from disk on every access (:class:`RunStoreError` when corrupt)."""
        return read_manifest(self.path)

    def _manifest_or_empty(self) -> dict[str, Any]:
        try:
            return self.manifest
        except RunStoreError:
            return {}

    @property
    def status(self) -> str:
        """running / finished / failed / interrupted (also for a dead writer) / corrupt."""
        try:
            return effective_status(self.manifest)
        except RunStoreError:
            return CORRUPT

    @property
    def name(self) -> str:
        """The run's display name (its id when the manifest has none)."""
        name = self._manifest_or_empty().get("name")
        return name if isinstance(name, str) else self.id

    @property
    def config(self) -> ModelConfig | None:
        """The run's ``ModelConfig``, or None when the run has no config."""
        data = self.manifest.get("config")
        if data is None:
            return None
        from llmlab.config import ModelConfig

        return ModelConfig.from_dict(data)

    @property
    def last_step(self) -> int | None:
        """The largest step logged so far (buffered rows included), or None."""
        saved = self._manifest_or_empty().get("last_step")
        with self._lock:
            steps = [row[0] for row in self._metrics]
        steps += [saved] if isinstance(saved, int) else []
        return max(steps, default=None)

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Set top-level manifest fields (and ``updated_at``) atomically; returns the manifest.

        >>> run.update_manifest(tags=["baseline"])["tags"]
        ['baseline']
        """
        frozen = sorted(FROZEN_FIELDS & fields.keys())
        if frozen:
            raise ValueError(f"manifest fields {frozen} identify the run and cannot change; "
                             "create a new run instead")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"run status must be one of {STATUSES}, got {fields['status']!r}")
        manifest = self.manifest
        manifest.update(fields, updated_at=now_iso())
        write_manifest(self.path, manifest)
        return manifest

    # -- logging ----------------------------------------------------------------------------

    def log_metrics(self, values: Mapping[str, float], step: int) -> None:
        """Buffer one value per metric name at ``step`` (flushed automatically, see class doc).

        >>> run.log_metrics({"train/loss": 2.1, "lr": 3e-4}, step=10)
        """
        if not isinstance(values, Mapping):
            raise TypeError(f"log_metrics takes a dict of metric name -> number, got "
                            f"{type(values).__name__}")
        step = _check_step(step)
        now = time.time()
        rows = [(step, _check_name(name), _as_float(name, value), now)
                for name, value in values.items()]
        with self._lock:
            self._metrics.extend(rows)
        self._after_log()

    def log_sample(self, step: int, prompt: str, text: str) -> None:
        """Buffer one generated sample (``prompt`` and the generated ``text``) at ``step``.

        >>> run.log_sample(10, "To be", ", or not to be")
        """
        if not isinstance(prompt, str) or not isinstance(text, str):
            raise TypeError("log_sample takes the prompt and the generated text as str; "
                            "decode token ids with the tokenizer first")
        row = (_check_step(step), prompt, text, time.time())
        with self._lock:
            self._samples.append(row)
        self._after_log()

    def _after_log(self) -> None:
        if not self._exit_hook:
            atexit.register(self._flush_at_exit)
            self._exit_hook = True
        every = self.auto_flush_seconds
        pending = len(self._metrics) + len(self._samples)
        if pending >= MAX_BUFFERED_ROWS or (
                every is not None and time.monotonic() - self._last_flush >= every):
            self.flush()

    def flush(self) -> None:
        """Write buffered metrics and samples as new part files and update the manifest's
        ``summary``, ``last_step`` and ``updated_at``. Rows stay buffered if a write fails.
        """
        with self._lock:
            self._last_flush = time.monotonic()
            if self._metrics:
                self._write_table(METRICS_DIR, self._metrics, parts.METRICS)
                written, self._metrics = self._metrics, []
                self._record_summary(written)
            if self._samples:
                self._write_table(SAMPLES_DIR, self._samples, parts.SAMPLES)
                self._samples = []

    def _write_table(self, folder_name: str, rows: list[tuple], schema: dict[str, str]) -> None:
        folder = self.path / folder_name
        parts.write_part(folder, parts.next_seq(folder), rows, schema)
        if self.compact_every:
            parts.compact(folder, schema, min_parts=self.compact_every)

    def _record_summary(self, rows: list[tuple[int, str, float, float]]) -> None:
        manifest = self.manifest
        summary = manifest.get("summary") if isinstance(manifest.get("summary"), dict) else {}
        summary.update({name: value for _, name, value, _ in rows})
        steps = [step for step, *_ in rows]
        if isinstance(manifest.get("last_step"), int):
            steps.append(manifest["last_step"])
        manifest.update(summary=summary, last_step=max(steps), updated_at=now_iso())
        write_manifest(self.path, manifest)

    def _flush_at_exit(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - interpreter shutdown: report, don't raise
            warnings.warn(f"run {self.id}: could not flush at exit ({exc})", RunStoreWarning,
                          stacklevel=1)

    # -- lifecycle --------------------------------------------------------------------------

    def finish(self, status: str = "finished", error: str | BaseException | None = None) -> None:
        """Flush, merge the part files into one, and record the final ``status`` and ``error``.

        >>> run.finish("failed", error="loss is NaN")
        """
        if status not in STATUSES or status == "running":
            raise ValueError(f"finish status must be 'finished', 'failed' or 'interrupted', "
                             f"got {status!r}")
        self.flush()
        for folder_name, schema in ((METRICS_DIR, parts.METRICS), (SAMPLES_DIR, parts.SAMPLES)):
            parts.compact(self.path / folder_name, schema, everything=True)
        self.update_manifest(status=status, error=None if error is None else str(error),
                             ended_at=now_iso())
        self._writer.release()
        if self._exit_hook:
            atexit.unregister(self._flush_at_exit)
            self._exit_hook = False

    def acquire_writer(self) -> Run:
        """Become the run's only writer: take its writer lock (:class:`RunLockedError` when
        another live process holds it) and remove the temp files a dead writer left.

        ``RunStore.create`` and :meth:`reopen` call this; :meth:`finish` lets the lock go.
        """
        self._writer.acquire()
        for folder in (self.path, self.path / METRICS_DIR, self.path / SAMPLES_DIR):
            for leftover in _temp_files(folder):
                leftover.unlink(missing_ok=True)
        checkpoints.remove_leftovers(self.path / CHECKPOINTS_DIR)
        return self

    def reopen(self, *, from_step: int | None = None) -> Run:
        """Mark the run "running" again, owned by this process (to resume training into it).
        Fails at once with :class:`RunLockedError` while another process writes it.

        ``from_step``: the step of the checkpoint training resumes from. Rows an earlier
        attempt logged past it (a process killed between checkpoints) are superseded: they
        stay in :attr:`metrics_long`, but :attr:`metrics` and :attr:`last_step` drop them.

        >>> run.reopen(from_step=100).status
        'running'
        """
        step = None if from_step is None else _check_step(from_step)  # before taking the lock
        self.acquire_writer()
        fields: dict[str, Any] = {}
        if step is not None:
            resumes = [*self._manifest_or_empty().get("resumes", []),
                       {"step": step, "time": time.time()}]
            fields = {"resumes": resumes, "last_step": step}
        self.update_manifest(status="running", error=None, ended_at=None, started_at=now_iso(),
                             pid=os.getpid(), host=socket.gethostname(), **fields)
        return self

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> None:
        status, error = _exit_status(exc_type, exc)
        try:
            if self._manifest_or_empty().get("status") == "running":
                self.finish(status, error)
            else:
                self.flush()
                self._writer.release()
        except Exception as end_exc:
            if exc is None:
                raise
            warnings.warn(f"run {self.id}: could not record its end ({end_exc})",
                          RunStoreWarning, stacklevel=2)

    # -- reading ----------------------------------------------------------------------------

    @property
    def metrics_long(self) -> pl.DataFrame:
        """Every logged row (step, name, value, time) in logging order, buffered rows included."""
        return self._read_table(METRICS_DIR, parts.METRICS, self._metrics)

    @property
    def metrics(self) -> pl.DataFrame:
        """One row per step, one column per metric, sorted by step; a step logged twice
        (e.g. after resuming from an earlier checkpoint) keeps its latest value, and steps an
        abandoned attempt logged past the checkpoint a resume started from are left out.

        >>> run.metrics.columns
        ['step', 'lr', 'train/loss']
        """
        import polars as pl

        long = _current_rows(self.metrics_long, self._manifest_or_empty().get("resumes", []))
        if long.is_empty():
            return pl.DataFrame(schema={"step": pl.Int64})
        wide = long.pivot(on="name", index="step", values="value", aggregate_function="last")
        return wide.sort("step")

    @property
    def samples(self) -> pl.DataFrame:
        """Logged samples (step, prompt, text, time) in logging order."""
        return self._read_table(SAMPLES_DIR, parts.SAMPLES, self._samples)

    def _read_table(self, folder_name: str, schema: dict[str, str],
                    pending: list[tuple]) -> pl.DataFrame:
        import polars as pl

        version = self._manifest_or_empty().get("format_version")
        frame = parts.read_parts(self.path / folder_name, schema, require_checksum=not (
            isinstance(version, int) and version < CHECKSUMS_SINCE))
        with self._lock:
            rows = list(pending)
        if not rows:
            return frame
        return pl.concat([frame, pl.DataFrame(rows, schema=frame.schema, orient="row")])

    # -- checkpoints and artifacts -------------------------------------------------------------

    def checkpoint_dir(self, step: int) -> Path:
        """Where the checkpoint of ``step`` goes: ``checkpoints/step-<8 digits>`` (not created)."""
        return self.path / CHECKPOINTS_DIR / checkpoint_name(step)

    def resumable_checkpoint(self, *, exact: bool = True) -> tuple[Path, list[str]]:
        """The latest checkpoint a resume can use and what makes it inexact (empty: exact);
        see :func:`llmlab.runs.checkpoints.pick_for_resume`.

        >>> folder, inexact = run.resumable_checkpoint()                   # doctest: +SKIP
        """
        return checkpoints.pick_for_resume(self.checkpoints(), self.id, exact=exact)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (folders holding ``COMPLETE``) as ``(step, path)``, by step."""
        try:
            entries = [p for p in (self.path / CHECKPOINTS_DIR).iterdir() if p.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = [(checkpoint_step(p.name), p) for p in entries]
        return sorted((step, p) for step, p in found
                      if step is not None and (p / CHECKPOINT_COMPLETE).is_file())

    def latest_checkpoint(self) -> Path | None:
        """The complete checkpoint with the highest step, or None."""
        found = self.checkpoints()
        return found[-1][1] if found else None

    def load_model(self, step: int | None = None) -> tuple[Any, Any]:
        """``(model, tokenizer)`` of the checkpoint at ``step`` (default: the latest), as
        ``llmlab.load`` reads it.

        >>> model, tok = llmlab.runs.get(run_id).load_model()           # doctest: +SKIP
        """
        from llmlab.checkpoint import load

        return load(self._checkpoint_at(step, "load") / "model")

    def _checkpoint_at(self, step: int | None, verb: str) -> Path:
        found = dict(self.checkpoints())
        if not found:
            raise RunStoreError(f"run {self.id} has no complete checkpoint to {verb}; "
                                "train with checkpoint_interval set (or to the end) first.")
        if step is not None and step not in found:
            raise RunStoreError(f"run {self.id} has no complete checkpoint at step {step}; it "
                                f"has steps {sorted(found)}.")
        return found[max(found) if step is None else step]

    def consolidate(self, out: str | os.PathLike, *, step: int | None = None) -> Path:
        """The model of the checkpoint at ``step`` (default: the latest), sharded or not,
        written to ``out`` as one folder that ``llmlab.load`` opens; returns ``out``.

        >>> llmlab.runs.get(run_id).consolidate("final/")              # doctest: +SKIP
        """
        from llmlab.runs.consolidate import consolidate

        return consolidate(self._checkpoint_at(step, "consolidate"), out)

    @property
    def artifacts_dir(self) -> Path:
        """Folder for free-form files (attention snapshots, calibrators); created by writers."""
        return self.path / ARTIFACTS_DIR


def _temp_files(folder: Path) -> list[Path]:
    """Temp files that :func:`llmlab._files.write_atomic` leaves when its process dies."""
    try:
        return [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    except OSError:
        return []


def _check_step(step: Any) -> int:
    try:
        if isinstance(step, bool):
            raise TypeError
        step = operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an int, got {step!r}") from None
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return step


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name == "step":
        raise ValueError(f"metric names must be non-empty strings other than 'step', got {name!r}")
    return name


def _as_float(name: str, value: Any) -> float:
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r} must be a number, got {value!r}; "
                        "log text with log_sample or put it in the manifest") from None


def _exit_status(exc_type: type[BaseException] | None,
                 exc: BaseException | None) -> tuple[str, str | None]:
    if exc_type is None:
        return "finished", None
    message = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
    return ("failed" if issubclass(exc_type, Exception) else "interrupted"), message


def _current_rows(long: pl.DataFrame, resumes: list) -> pl.DataFrame:
    """``long`` without the rows each resume superseded: logged before it, past its step."""
    import polars as pl

    for resume in resumes:
        if isinstance(resume, dict) and isinstance(resume.get("step"), int) and isinstance(
                resume.get("time"), (int, float)):
            stale = (pl.col("step") > resume["step"]) & (pl.col("time") < resume["time"])
            long = long.filter(~stale)
    return long
