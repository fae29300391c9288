"""The run store as an accelerate tracker, so ``accelerator.log`` writes into a run.

The only module of ``llmlab.runs`` that imports accelerate.

>>> from accelerate import Accelerator
>>> run = llmlab.runs.create(name="demo")
>>> accelerator = Accelerator(log_with=[RunTracker(run), "tensorboard"], project_dir="tb")
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from accelerate.tracking import GeneralTracker, on_main_process

from llmlab.runs.manifest import to_jsonable
from llmlab.runs.run import Run


class RunTracker(GeneralTracker):
    """Sends ``accelerator.log`` values to a :class:`Run` (numbers only; text and images are
    left to the other trackers). It never sets the run's status: the trainer owns that.

    >>> accelerator.init_trackers("demo", config={"lr": 3e-4})   # -> manifest "hparams"
    >>> accelerator.log({"train/loss": 2.3}, step=1)              # -> run.log_metrics
    """

    name = "llmlab"
    requires_logging_directory = False
    main_process_only = True

    def __init__(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise TypeError(f"RunTracker needs a llmlab.runs.Run, got {type(run).__name__}; "
                            "create one with llmlab.runs.create()")
        super().__init__()
        self.run = run

    @property
    def tracker(self) -> Run:
        """The run this tracker writes to."""
        return self.run

    @on_main_process
    def store_init_configuration(self, values: dict[str, Any]) -> None:
        """Record the hyperparameters of ``init_trackers(config=...)`` as manifest "hparams"."""
        self.run.update_manifest(hparams=to_jsonable(values))

    @on_main_process
    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Log the numeric values at ``step`` (the run's last step when None); nested dicts
        become ``outer/inner`` names."""
        found = numeric_values(values)
        if found:
            if step is None:
                step = self.run.last_step or 0
            self.run.log_metrics(found, step=step)

    @on_main_process
    def finish(self) -> None:
        """Flush buffered rows (``accelerator.end_training()`` calls this)."""
        self.run.flush()


def numeric_values(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers in ``values`` (tensor and numpy scalars included), nested keys joined by "/".

    >>> numeric_values({"loss": 2.0, "note": "hi", "val": {"acc": 0.5}, "done": True})
    {'loss': 2.0, 'val/acc': 0.5}
    """
    found: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found.update(numeric_values(value, f"{name}/"))
        elif (number := _number(value)) is not None:
            found[name] = number
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        item = value.item()  # one-element tensors and arrays
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return None
    return _number(item) if item is not value else None
