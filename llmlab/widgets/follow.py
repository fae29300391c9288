"""Following a run through the run store: what ``TrainerWidget.attach`` reads and says.

A run trains in some process (a TrainerWidget's thread, ``Trainer.fit`` in a background
thread, another kernel, ``python -m llmlab.train``) and flushes its metrics into the store
every couple of seconds; a widget that follows it reads :func:`read_progress` on a timer and,
once the run is no longer running, shows :func:`ending`'s sentence.

>>> run = find_run(run_id, run_dir)                                  # doctest: +SKIP
>>> progress = read_progress(run); progress.last_step               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmlab.runs.layout import RunNotFoundError, RunStoreError

#: Samples a followed view shows (the latest first).
SAMPLES_SHOWN = 3


@dataclass
class Progress:
    """A run as the store has it now: status, the wide metrics frame, the last step's
    values, the last validation loss and the latest samples (as the widget prints them)."""

    status: str
    metrics: Any
    last_step: int | None
    last: dict[str, float] = field(default_factory=dict)
    last_val: float | None = None
    samples: list[str] = field(default_factory=list)


def find_run(run_id: str | None, run_dir: Any = None) -> Any:
    """The run ``run_id`` of the store at ``run_dir`` (default ``$LLMLAB_RUNS_DIR`` or
    ./llmlab-runs), or its newest running run when ``run_id`` is None; an error that says
    what to do when the store or the run is not there."""
    from llmlab.runs import RunStore

    store = RunStore(run_dir)
    if not store.path.is_dir():
        raise RunStoreError(f"there is no run store at {store.path} (moved or deleted?); pass "
                            "attach(run_dir=...) the folder the training writes to")
    if run_id is not None:
        return store.get(run_id)
    running = [run for run in store.runs() if run.status == "running"]
    if not running:
        raise RunNotFoundError(f"no run is training in {store.path}; pass attach(run_id) one "
                               "of the runs llmlab.runs.list() shows there")
    return running[0]


def settings_of(run: Any) -> Any:
    """The run's training settings (``TrainConfig``) from its manifest; the defaults where a
    manifest holds none a TrainConfig accepts (a run written by other code)."""
    from llmlab.errors import ConfigError
    from llmlab.train.config import TrainConfig

    training = run.manifest.get("training")
    try:
        return TrainConfig.from_dict(training) if isinstance(training, dict) else TrainConfig()
    except (ConfigError, TypeError, ValueError):
        return TrainConfig()


def read_progress(run: Any) -> Progress:
    """Read the run once: a :class:`RunStoreError` saying what happened when its folder or
    the store has gone."""
    import polars as pl

    for folder, what in ((run.store.path, "the run store"), (run.path, f"run {run.id}")):
        if not folder.is_dir():
            raise RunStoreError(f"{what} at {folder} is gone (moved or deleted?) while it was "
                                "followed; attach again where it is now "
                                "(TrainerWidget.attach(run_id, run_dir=...))")
    status = run.status
    frame = run.metrics
    if frame.is_empty():
        return Progress(status, frame, None)
    last = {name: value for name, value in frame.row(-1, named=True).items()
            if name != "step" and value is not None}
    val = frame.select(pl.col("val/loss").drop_nulls()) if "val/loss" in frame.columns else None
    samples = run.samples.tail(SAMPLES_SHOWN).reverse()
    return Progress(status, frame, int(frame["step"][-1]), last,
                    float(val[-1, 0]) if val is not None and val.height else None,
                    [f"step {row['step']}: {row['prompt']}{row['text']}"
                     for row in samples.iter_rows(named=True)])


def ending(run: Any, progress: Progress, *, resumable: bool) -> tuple[str, str]:
    """How a run that is no longer running ended, as ``(message, kind)`` for a StatusLine:
    finished, failed, stopped, or interrupted because its process is gone (a kernel restart,
    shutdown or crash), with what can continue it."""
    manifest = run._manifest_or_empty()
    steps = f"{progress.last_step or 0:,} steps"
    if progress.status == "finished":
        val = progress.last_val
        return (f"run {run.id} is not running: it finished ({steps}"
                + (f", val loss {val:.4f}" if val is not None else "") + ")", "ok")
    if progress.status == "failed":
        return (f"run {run.id} is not running: it failed after {steps} "
                f"({manifest.get('error')})", "error")
    if progress.status == "corrupt":
        return f"run {run.id} cannot be read: its manifest is damaged", "error"
    if manifest.get("status") == "running":   # the writer died without saying so
        why = (f"the process that trained it (pid {manifest.get('pid')} on "
               f"{manifest.get('host')}) has ended without finishing it: a kernel restart, "
               "shutdown or crash")
    else:
        why = manifest.get("error") or "it was stopped"
    return f"run {run.id} was interrupted after {steps}: {why}. {_continue(run, resumable)}", "info"


def _continue(run: Any, resumable: bool) -> str:
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        return "No checkpoint was saved, so it cannot be resumed."
    if resumable:
        return f"Resume continues it from {checkpoint.name}."
    return (f"To continue from {checkpoint.name}: TrainerWidget.attach({run.id!r}, data=data) "
            f"and Resume, or llmlab.Trainer(model, data, ...).fit(resume_from={run.id!r}).")
