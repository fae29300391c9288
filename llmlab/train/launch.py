"""From a notebook's Trainer to a cluster: the same training as a spec file, the
``accelerate launch`` line that runs it, and a guarded ``notebook_launcher``.

:func:`write_spec` describes a Trainer's model, data and settings as a spec for
``python -m llmlab.train`` / ``accelerate launch -m llmlab.train`` (see
:mod:`llmlab.train.cli`). What a spec cannot name is saved beside it, and the returned
:class:`SpecFile` says so: a model whose weights are not what ``build_model(config, seed)``
gives (trained, imported or changed in Python) is saved with ``llmlab.save`` and the spec
points at it; a corpus built in the notebook is saved with ``llmlab.data.save_corpus``.
Classification or seq2seq data built in Python cannot be described (the spec names those by
data set): that is an error saying to build the trainer from a spec instead.

>>> spec = trainer.to_spec("spec.json")                          # doctest: +SKIP
>>> print(trainer.launch_command(num_processes=8))               # doctest: +SKIP
accelerate launch --num_processes 8 --num_machines 1 -m llmlab.train /abs/spec.json
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from llmlab._files import write_text_atomic
from llmlab.errors import ConfigError, LLMLabError

__all__ = ["SpecFile", "launch_command", "notebook_launch", "write_spec"]


@dataclass
class SpecFile:
    """A spec written by :func:`write_spec`: where, what it says, and what was saved for it."""

    path: Path
    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        lines = [f"spec {self.path}"] + [f"  - {note}" for note in self.notes]
        return "\n".join(lines)


def write_spec(trainer: Any, path: str | Path) -> SpecFile:
    """Write the spec of ``trainer``'s training to ``path`` (JSON, atomically)."""
    path = Path(path).expanduser().resolve()
    if path.suffix != ".json":
        raise ConfigError(f"a spec is a .json file; got {path.name!r}: pass e.g. 'spec.json'.")
    recorded = _recorded_spec(trainer)
    notes: list[str] = []
    spec = {
        "model": _model_spec(trainer, path.with_name(f"{path.stem}-model"), notes),
        "data": _data_spec(trainer, path.with_name(f"{path.stem}-data"), notes, recorded),
        "train": trainer.config.to_dict(),
        "run_dir": str(trainer.store.path.resolve()),
    }
    if trainer.run_name:
        spec["run_name"] = trainer.run_name
    write_text_atomic(path, json.dumps(spec, indent=2))
    trainer._spec_path = path
    return SpecFile(path, spec, notes)


def _recorded_spec(trainer: Any) -> dict[str, Any] | None:
    """The spec a Trainer was built from (``trainer_from_spec``), if it was."""
    from llmlab.train.cli import RecordSpec

    for callback in trainer.callbacks:
        if isinstance(callback, RecordSpec):
            return callback.spec
    return None


def _model_spec(trainer: Any, folder: Path, notes: list[str]) -> dict[str, Any]:
    from llmlab.checkpoint import save
    from llmlab.models import build_model

    model, cfg = trainer.model, trainer.model.config
    if _same_weights(model, build_model(cfg, seed=trainer.config.seed)):
        return {"config": cfg.to_dict()}
    save(model, folder, tokenizer=getattr(trainer.data, "tokenizer", None))
    notes.append(f"the model's weights are not those build_model(config, seed="
                 f"{trainer.config.seed}) makes (trained, imported or changed in Python): saved "
                 f"to {folder}, which the spec loads")
    return {"checkpoint": str(folder)}


def _same_weights(model: torch.nn.Module, fresh: torch.nn.Module) -> bool:
    mine, theirs = model.state_dict(), fresh.state_dict()
    return mine.keys() == theirs.keys() and all(
        mine[k].shape == theirs[k].shape and torch.equal(mine[k].detach().cpu(), theirs[k])
        for k in mine)


def _data_spec(trainer: Any, folder: Path, notes: list[str],
               recorded: dict[str, Any] | None) -> dict[str, Any]:
    from llmlab import data as D

    if recorded is not None and "data" in recorded:
        return dict(recorded["data"])
    kinds = {D.CausalLMData: "causal_lm", D.MaskedLMData: "masked_lm"}
    kind = kinds.get(type(trainer.data))
    if kind is None:
        raise ConfigError(
            f"{type(trainer.data).__name__} built in Python cannot be described by a spec (a "
            "spec names classification data by data set: sst2, trec or agnews). Build the "
            "trainer with llmlab.train.trainer_from_spec({..., 'data': {'kind': "
            "'classification', 'dataset': ...}}) and call to_spec on that one.")
    D.save_corpus(trainer.data, folder)
    notes.append(f"the data was built in Python: its token ids and tokenizer are saved to "
                 f"{folder}, which the spec loads")
    return {"kind": kind, "saved": str(folder)}


def launch_command(spec: str | Path, *, num_processes: int = 1, num_machines: int = 1) -> str:
    """The ``accelerate launch`` line that runs ``spec`` on ``num_processes`` processes in all
    (accelerate's meaning: over every machine) on ``num_machines`` machines. Sharding and
    precision come from the spec's settings, so the line needs no accelerate config.

    >>> launch_command("/runs/spec.json", num_processes=8)
    'accelerate launch --num_processes 8 --num_machines 1 -m llmlab.train /runs/spec.json'
    """
    for name, value in (("num_processes", num_processes), ("num_machines", num_machines)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a whole number of 1 or more.")
    if num_processes % num_machines:
        raise ConfigError(f"num_processes={num_processes} (the total over all machines) is not "
                          f"a multiple of num_machines={num_machines}; give the same number of "
                          "processes to every machine.")
    parts = ["accelerate", "launch", "--num_processes", str(num_processes),
             "--num_machines", str(num_machines)]
    if num_machines > 1:  # each machine runs the line with its own rank
        parts += ["--machine_rank", "$MACHINE_RANK", "--main_process_ip", "$MAIN_PROCESS_IP",
                  "--main_process_port", "29500"]
    return " ".join(parts + ["-m", "llmlab.train", shlex.quote(str(spec))])


def notebook_launch(trainer: Any, num_processes: int) -> Any:
    """Run ``trainer.fit()`` in ``num_processes`` processes forked from this kernel with
    accelerate's ``notebook_launcher``; returns the run it recorded (read from the store).

    Forked processes cannot use CUDA once the kernel has initialised it, so that is refused
    up front; an Accelerator left by an earlier training in this kernel is cleared first.
    """
    from accelerate import notebook_launcher
    from accelerate.state import AcceleratorState, GradientState

    if not isinstance(num_processes, int) or isinstance(num_processes, bool) or num_processes < 1:
        raise ConfigError(f"num_processes={num_processes!r} must be a whole number of 1 or more.")
    if num_processes > 1 and torch.cuda.is_initialized():
        raise LLMLabError(
            "CUDA is already initialised in this kernel (a cell put a tensor or model on the "
            "GPU), and processes forked from it cannot use the GPU. Restart the kernel and call "
            "launch_in_notebook before anything touches the GPU: build the model on the CPU, "
            "the Trainer moves it.")
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    before = {run.id for run in trainer.store.runs()}
    notebook_launcher(trainer.fit, num_processes=num_processes)
    new = [run for run in trainer.store.runs() if run.id not in before]  # newest first
    return new[0] if new else None
