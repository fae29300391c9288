"""Rerun a finished training run from its manifest and check that the metrics come out the same.

>>> check = llmlab.runs.reproduce("20261123-071800-3f9a2c")    # doctest: +SKIP
>>> check.matches, check.max_diff["train/loss"]                # doctest: +SKIP
(True, 0.0)

A run can be rerun when its manifest holds the spec it was trained from (``"spec"``: runs
started with ``python -m llmlab.train spec.json`` or ``llmlab.train.cli.trainer_from_spec``).
The model config, training settings and seed come from the manifest; the data is rebuilt from
the spec and must have the fingerprint the manifest recorded. The rerun trains in this process
on one process: on a CPU its metrics equal the original's exactly; a run trained on several
processes or on a GPU agrees only up to rounding, so compare it with ``atol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmlab.runs.layout import RunStoreError
from llmlab.runs.store import RunStore

if TYPE_CHECKING:
    import os

    import polars as pl

    from llmlab.runs.run import Run

#: Metrics that measure the machine, not the model: never compared.
TIMING_METRICS = frozenset({"tokens_per_s", "mfu"})
#: Manifest field of a rerun naming the run it reproduces.
REPRODUCES_FIELD = "reproduces"


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`: the original run, the new one, and how they compare.

    ``max_diff`` maps each compared metric to the largest absolute difference over the steps
    (``inf`` when one run logged a step or metric the other did not); ``matches`` is whether
    every difference is within ``atol``.
    """

    original: Run
    run: Run
    matches: bool
    max_diff: dict[str, float]
    atol: float = 0.0

    def to_polars(self) -> pl.DataFrame:
        """One row per metric: ``metric``, ``max_diff``, ``matches``."""
        import polars as pl

        names = sorted(self.max_diff)
        return pl.DataFrame({
            "metric": names,
            "max_diff": [self.max_diff[n] for n in names],
            "matches": [self.max_diff[n] <= self.atol for n in names],
        })

    def __repr__(self) -> str:
        worst = max(self.max_diff.values(), default=0.0)
        return (f"Reproduction(original={self.original.id!r}, run={self.run.id!r}, "
                f"matches={self.matches}, worst max_diff={worst:g})")


def reproduce(run_id: str, *, run_dir: str | os.PathLike | None = None, atol: float = 0.0,
              progress: bool = False) -> Reproduction:
    """Train run ``run_id`` of the store ``run_dir`` again from its manifest and compare.

    The new run goes into the same store, named after the original, with
    ``"reproduces": run_id`` in its manifest. Timing metrics (``tokens_per_s``, ``mfu``) are not
    compared. ``progress`` shows the progress bar while training.

    >>> check = reproduce(run.id, run_dir="llmlab-runs")    # doctest: +SKIP
    >>> check.matches                                        # doctest: +SKIP
    True
    """
    if not (isinstance(atol, (int, float)) and atol >= 0):
        raise ValueError(f"atol must be a number >= 0, got {atol!r}; 0 asks for exact equality")
    store = RunStore(run_dir)
    original = store.get(run_id)
    manifest = original.manifest
    spec = _rerun_spec(original, manifest, store)

    from llmlab.train.cli import trainer_from_spec

    trainer = trainer_from_spec(spec, progress=progress)
    _check_same_inputs(original, manifest, trainer)
    run = trainer.fit()
    run.update_manifest(**{REPRODUCES_FIELD: original.id})
    if run.status != "finished":
        raise RunStoreError(f"the rerun {run.id} of run {original.id} ended {run.status!r} "
                            f"({run.manifest.get('error')}); nothing to compare")
    max_diff = compare_metrics(original.metrics_long, run.metrics_long)
    matches = all(diff <= atol for diff in max_diff.values())
    return Reproduction(original, run, matches, max_diff, float(atol))


def _rerun_spec(original: Run, manifest: dict[str, Any], store: RunStore) -> dict[str, Any]:
    from llmlab.train.cli import SPEC_FIELD

    status = original.status
    if status != "finished":
        raise RunStoreError(
            f"run {original.id} is {status!r}; only a finished run can be reproduced. Resume it "
            f"to the end first (trainer.fit(resume_from={original.id!r}))."
        )
    spec = manifest.get(SPEC_FIELD)
    if not isinstance(spec, dict):
        raise RunStoreError(
            f"run {original.id} has no training spec in its manifest, so it cannot be rerun: it "
            "was trained from Python objects (Trainer(model, data)), whose data llmlab cannot "
            "rebuild. Train from a spec to make a run reproducible: "
            "llmlab.train.cli.trainer_from_spec(spec).fit(), or python -m llmlab.train "
            "spec.json."
        )
    if not isinstance(manifest.get("training"), dict):
        raise RunStoreError(f"run {original.id}'s manifest has no training settings; it "
                            "cannot be rerun")
    name = manifest.get("name") or original.id
    return {**spec, "train": manifest["training"], "run_dir": str(store.path),
            "run_name": f"{name} (reproduction)"}


def _check_same_inputs(original: Run, manifest: dict[str, Any], trainer: Any) -> None:
    recorded = (manifest.get("data") or {}).get("fingerprint")
    rebuilt = trainer.data.fingerprint
    if recorded is not None and recorded != rebuilt:
        raise RunStoreError(
            f"the data rebuilt from run {original.id}'s spec differs from the data it was "
            f"trained on (fingerprint {rebuilt[:12]}... instead of {recorded[:12]}...): the "
            "corpus, the data set files or the tokenizer changed since. Restore the original "
            f"files (spec: {manifest.get('spec', {}).get('data')}) and reproduce again."
        )
    config = manifest.get("config")
    if config is not None and config != trainer.model.config.to_dict():
        raise RunStoreError(
            f"the model rebuilt from run {original.id}'s spec has another config than the run "
            "recorded; the checkpoint it starts from changed since. Restore it and reproduce "
            "again."
        )


def compare_metrics(first: pl.DataFrame, second: pl.DataFrame) -> dict[str, float]:
    """Largest absolute difference per metric between two long metric tables (step, name,
    value), timing metrics left out. A step logged twice counts with its last value; a
    (step, metric) present in one table only makes that metric's difference ``inf``; two NaN
    values are equal.

    >>> import polars as pl
    >>> a = pl.DataFrame({"step": [1, 2], "name": ["loss", "loss"], "value": [2.0, 1.5]})
    >>> compare_metrics(a, a.with_columns(pl.col("value") + 0.25))
    {'loss': 0.25}
    """
    import polars as pl

    def latest(frame: pl.DataFrame) -> pl.DataFrame:
        frame = frame.filter(~pl.col("name").is_in(list(TIMING_METRICS)))
        return frame.group_by("name", "step", maintain_order=True).agg(pl.col("value").last())

    joined = latest(first).join(latest(second), on=["name", "step"], how="full",
                                coalesce=True, suffix="_rerun")
    result: dict[str, float] = {}
    for name, a, b in joined.select("name", "value", "value_rerun").iter_rows():
        result[name] = max(result.get(name, 0.0), _difference(a, b))
    return result


def _difference(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return math.inf
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    diff = abs(a - b)
    return math.inf if math.isnan(diff) else diff
