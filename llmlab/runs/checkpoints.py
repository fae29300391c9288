"""Training checkpoints of a run: written whole or not at all, checked before a resume uses them.

A checkpoint is written into ``checkpoints/step-<N>.partial`` and sealed by :func:`seal`, which
writes ``COMPLETE`` last: ``{"step": N, "time": ..., "files": {relative path: sha256}}`` over
every file in the folder. The folder is then renamed to ``step-<N>``. :func:`check` reads a
checkpoint back against its ``COMPLETE`` (checkpoints of older llmlab versions, whose marker
holds only the step, are checked for the files a resume needs). Pruning renames a folder to
``.step-<N>.deleting`` before removing it, so a prune cut short leaves no half checkpoint
that looks whole; :func:`remove_leftovers` clears such folders, and unsealed ``.partial``
ones, when a writer reopens the run.

>>> from llmlab.runs.checkpoints import check                     # doctest: +SKIP
>>> check(run.path / "checkpoints" / "step-00000010")             # doctest: +SKIP
Checked(step=10, problems=[], inexact=[])
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llmlab._files import (
    UnsafeFileError,
    read_regular_text,
    sha256_file,
    write_text_atomic,
)
from llmlab.runs.layout import CHECKPOINT_COMPLETE, checkpoint_step, now_iso

PARTIAL = ".partial"
DELETING = ".deleting"
# files whose loss makes a resume inexact but not impossible (RNG and sampler states)
EXACTNESS_FILES = ("data_generator.safetensors",)
EXACTNESS_PREFIX = "accelerate/random_states_"
# what any resumable checkpoint holds, old or new
REQUIRED = ("trainer_state.json", "model/model.safetensors", "model/config.json")


@dataclass
class Checked:
    """What :func:`check` found: ``problems`` make the checkpoint unusable; ``inexact`` name
    RNG or sampler-state files that are missing or damaged (a resume would not be exact)."""

    step: int | None
    problems: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems and not self.inexact

    def reason(self) -> str:
        return "; ".join(self.problems + self.inexact)


def seal(folder: Path, step: int) -> Path:
    """Write ``COMPLETE`` into ``folder`` (the last file of a checkpoint), hashing every file.

    >>> seal(partial_folder, 10)                                      # doctest: +SKIP
    """
    files = {path.relative_to(folder).as_posix(): sha256_file(path)
             for path in sorted(folder.rglob("*")) if path.is_file()}
    marker = folder / CHECKPOINT_COMPLETE
    write_text_atomic(marker, json.dumps({"step": step, "time": now_iso(), "files": files}))
    return marker


def check(folder: Path) -> Checked:
    """Read a checkpoint back against its ``COMPLETE`` marker."""
    marker = folder / CHECKPOINT_COMPLETE
    try:
        seal_data = _read_marker(marker)
    except (OSError, UnsafeFileError, ValueError) as err:
        return Checked(checkpoint_step(folder.name), [f"{marker.name}: {err}"])
    if isinstance(seal_data, int):  # an older llmlab's marker: just the step
        return _check_presence(folder, seal_data)
    result = Checked(seal_data["step"])
    for name, digest in seal_data["files"].items():
        problem = _file_problem(folder, name, digest)
        if problem:
            is_exactness = name in EXACTNESS_FILES or name.startswith(EXACTNESS_PREFIX)
            (result.inexact if is_exactness else result.problems).append(problem)
    if not seal_data["files"]:
        result.problems.append("COMPLETE lists no files (an empty checkpoint)")
    return result


def _read_marker(marker: Path) -> int | dict:
    text = read_regular_text(marker, limit=1 << 22)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err})") from None
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if (not isinstance(data, dict) or not isinstance(data.get("step"), int)
            or not isinstance(data.get("files"), dict)):
        raise ValueError("not a checkpoint marker ({step, time, files})")
    return data


def _check_presence(folder: Path, step: int) -> Checked:
    missing = [f"{name} is missing" for name in REQUIRED if not (folder / name).is_file()]
    return Checked(step, missing)


def _file_problem(folder: Path, name: str, digest: str) -> str | None:
    path = folder / name
    if ".." in Path(name).parts or not path.is_file():
        return f"{name} is missing"
    try:
        if sha256_file(path) != digest:
            return f"{name} is damaged (its checksum does not match COMPLETE)"
    except OSError as err:
        return f"{name} cannot be read ({err})"
    return None


def prune(folder: Path) -> None:
    """Remove a checkpoint: renamed to ``.step-N.deleting`` first, so no reader ever sees a
    half-deleted folder under its real name."""
    doomed = folder.with_name(f".{folder.name}{DELETING}")
    folder.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_leftovers(checkpoints_dir: Path) -> list[Path]:
    """Remove unsealed ``*.partial`` and half-pruned ``*.deleting`` folders a dead writer
    left; call it only as the run's writer. Returns what was removed."""
    try:
        entries = list(checkpoints_dir.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = [p for p in entries if p.name.endswith((PARTIAL, DELETING))]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def pick_for_resume(found: list[tuple[int, Path]], run_id: str, *,
                    exact: bool = True) -> tuple[Path, list[str]]:
    """The latest of ``found`` (``(step, folder)``, by step) that a resume can use, and the
    files that make it inexact (empty: an exact resume). Newer damaged checkpoints are
    passed over with a warning naming each and the one used; with ``exact=False`` one whose
    only damage is to RNG or sampler states is used. Raises when none will do."""
    import warnings

    from llmlab.runs.layout import RunStoreError, RunStoreWarning

    skipped: list[str] = []
    for _, folder in reversed(found):
        checked = check(folder)
        if checked.intact or (not exact and not checked.problems):
            if skipped:
                warnings.warn(
                    f"run {run_id}: resuming from {folder.name}, the latest intact checkpoint; "
                    f"passed over {'; '.join(skipped)}", RunStoreWarning, stacklevel=3)
            return folder, checked.inexact
        skipped.append(f"{folder.name} ({checked.reason()})")
    hint = ("; if only RNG or sampler states are damaged, resume with exact=False "
            "(--inexact-resume) to continue inexactly" if exact else "")
    raise RunStoreError(
        f"run {run_id} has no checkpoint a resume can use: "
        + ("; ".join(skipped) if skipped else "none is complete")
        + f". Start a new run instead of resuming{hint}.")
