"""The run manifest: what it holds, how it is read and written, and the status a reader reports.

>>> m = new_manifest("20261123-071800-3f9a2c", seed=1)
>>> m["status"], m["format_version"]
('running', 2)

On disk a manifest also holds ``checksum``: the SHA-256 of its other fields (see
:func:`manifest_checksum`), which readers verify, so a damaged byte never reads as a value.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from llmlab._files import read_regular_text, sha256_hex, write_text_atomic
from llmlab.errors import InvalidRunFieldError
from llmlab.formats import Format
from llmlab.runs.layout import (
    CORRUPT,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    STATUSES,
    RunStoreError,
    now_iso,
    parse_iso,
)

#: Packages whose versions every manifest records (None when not installed).
VERSIONED_PACKAGES = ("llmlab", "torch", "accelerate", "polars")
#: Fields ``update_manifest`` may not change: they identify the run and its format.
FROZEN_FIELDS = frozenset({"format", "format_version", "id", "created_at"})
GIT_TIMEOUT_S = 2.0
#: Field holding the manifest's own checksum (``"sha256:<hex>"``); not part of what it covers.
CHECKSUM_FIELD = "checksum"
#: The largest manifest a reader reads: a real one is a few kB.
MAX_MANIFEST_BYTES = 16 << 20
#: Format version from which a manifest must carry a checksum and parts a sum in their names.
CHECKSUMS_SINCE = 2


def to_jsonable(value: Any) -> Any:
    """``value`` made strict-JSON safe: paths and enums to str/values, configs and dataclasses to
    dicts, tensor/numpy scalars to numbers, non-finite floats to None, anything else to ``str``.

    >>> to_jsonable({"lr": float("nan"), "dir": Path("/tmp"), "sizes": (1, 2)})
    {'lr': None, 'dir': '/tmp', 'sizes': [1, 2]}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_jsonable(v) for v in value), key=str)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    return _convert_object(value)


def _convert_object(value: Any) -> Any:
    if callable(getattr(value, "to_dict", None)):
        return to_jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if callable(getattr(value, "item", None)):  # 0-d tensors, numpy scalars
        try:
            return to_jsonable(value.item())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def manifest_checksum(manifest: Mapping[str, Any]) -> str:
    """``"sha256:<hex>"`` of the manifest's fields other than ``checksum``, as canonical JSON
    (sorted keys, no spaces), so re-indenting the file keeps it valid and changing a value
    does not.

    >>> manifest_checksum({"a": 1}) == manifest_checksum({"a": 1, "checksum": "x"})
    True
    """
    body = {k: v for k, v in manifest.items() if k != CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return "sha256:" + sha256_hex(text.encode("utf-8", "surrogatepass"))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the run in ``folder``; :class:`RunStoreError` saying why when unreadable
    (missing, not a regular file, not JSON, not a manifest, too new, or a checksum that does
    not match). The returned dict has no ``checksum`` field.
    """
    path = Path(folder) / MANIFEST_FILE
    try:
        data = json.loads(read_regular_text(path, MAX_MANIFEST_BYTES))
    except FileNotFoundError:
        raise RunStoreError(f"{path} is missing; this folder is not a complete run") from None
    except OSError as exc:
        raise RunStoreError(f"{path} cannot be read ({exc}); restore or delete the run"
                            ) from None
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise RunStoreError(f"{path} is not valid JSON ({reason}); restore or delete the run"
                            ) from None
    _check_format(path, data)
    _check_sum(path, data)
    return data


def _check_sum(path: Path, data: dict[str, Any]) -> None:
    stored = data.pop(CHECKSUM_FIELD, None)
    if stored is None and data["format_version"] < CHECKSUMS_SINCE:
        return
    try:
        actual = manifest_checksum(data)
    except (TypeError, ValueError) as exc:
        actual = f"unhashable ({exc})"
    if stored != actual:
        raise RunStoreError(f"{path} does not match its checksum (stored {stored!r}); the file "
                            "was damaged or edited by hand. Restore it from a backup, or "
                            "delete the run")


MANIFEST_FORMAT = Format(FORMAT, FORMAT_VERSION, oldest=1, what="an llmlab run manifest",
                         redo="restore the run's manifest.json from a backup, or delete the run")


def _check_format(path: Path, data: Any) -> None:
    MANIFEST_FORMAT.check(data, path, RunStoreError)


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` with its checksum, atomically (readers see the old or the new file,
    never half)."""
    body = {k: v for k, v in to_jsonable(manifest).items() if k != CHECKSUM_FIELD}
    body[CHECKSUM_FIELD] = manifest_checksum(body)
    text = json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False)
    write_text_atomic(Path(folder) / MANIFEST_FILE, text + "\n")


def new_manifest(run_id: str, *, name: str | None = None, kind: str = "train",
                 config: Any = None, training: Mapping[str, Any] | None = None,
                 seed: int | None = None, data: Mapping[str, Any] | None = None,
                 device: str | None = None, tags: Any = (),
                 git: Mapping[str, Any] | None = None,
                 params: int | None = None) -> dict[str, Any]:
    """The manifest of a new run: status "running", versions, host and pid captured now.

    ``git`` is what :func:`git_info` returned (the caller runs git once, not per attempt).
    ``params`` is the model's parameter count when it differs from what ``config`` builds
    (a head-pruned model keeps its original config).
    """
    now = now_iso()
    return {
        **MANIFEST_FORMAT.header(), "id": run_id,
        "name": run_id if name is None else _text("name", name),
        "kind": _text("kind", kind), "status": "running",
        "created_at": now, "started_at": now, "updated_at": now, "ended_at": None,
        "config": _config_dict(config), "params": _count("params", params),
        "training": _mapping("training", training),
        "hparams": None, "seed": seed, "data": _mapping("data", data),
        "device": None if device is None else str(device),
        "versions": package_versions(), "git": None if git is None else dict(git),
        "host": socket.gethostname(), "pid": os.getpid(), "error": None,
        "last_step": None, "summary": {}, "tags": _tags(tags),
    }


def _text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRunFieldError(f"run {field} must be a non-empty string, got {value!r}")
    return value


def _count(field: str, value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidRunFieldError(
            f"run {field} must be a non-negative int (or None), got {value!r}")
    return value


def _mapping(field: str, value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRunFieldError(
            f"run {field} must be a dict (or None), got {type(value).__name__}")
    return to_jsonable(value)


def _config_dict(config: Any) -> dict[str, Any] | None:
    if config is None or isinstance(config, Mapping):
        return _mapping("config", config)
    if callable(getattr(config, "to_dict", None)):
        return to_jsonable(config.to_dict())
    raise InvalidRunFieldError(f"run config must be a ModelConfig, a dict or None, "
                    f"got {type(config).__name__}")


def _tags(tags: Any) -> list[str]:
    tags = [tags] if isinstance(tags, str) else list(tags)
    bad = [t for t in tags if not isinstance(t, str)]
    if bad:
        raise InvalidRunFieldError(f"run tags must be strings, got {bad!r}")
    return tags


def package_versions() -> dict[str, str | None]:
    """Installed versions of the recorded packages and of Python, without importing them."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_info(cwd: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git work tree holding ``cwd``; None outside one (or no git).

    ``dirty`` counts changes to tracked files only: a run store inside the repository would
    otherwise make every run look dirty. It is None when ``git status`` is too slow.
    """
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _git(args: list[str], cwd: str | os.PathLike | None) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: never take index.lock, so a user's own git command cannot collide.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def effective_status(manifest: Mapping[str, Any]) -> str:
    """The status readers report: the manifest's, except that a "running" run whose process is
    gone from this host reads "interrupted"; unknown values read "corrupt".

    >>> effective_status({"status": "finished"})
    'finished'
    """
    status = manifest.get("status")
    if status not in STATUSES:
        return CORRUPT
    if status == "running" and is_stale(manifest):
        return "interrupted"
    return status


def is_stale(manifest: Mapping[str, Any]) -> bool:
    """True when the manifest's process ran on this host and is no longer alive (or its
    ``pid`` is not a process id at all, so no live writer can be behind it)."""
    pid = manifest.get("pid")
    if manifest.get("host") != socket.gethostname():
        return False
    if not isinstance(pid, int) or isinstance(pid, bool):
        return True
    return not pid_alive(pid, started_by=parse_iso(manifest.get("started_at")))


def pid_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether process ``pid`` lives (like ``os.kill(pid, 0)``, zombies counting as dead).

    With ``started_by`` (unix seconds), a process started later than that is a different
    process that reuses the pid, so the original one is dead.
    """
    import psutil  # a dependency of accelerate; imported here to keep `import llmlab.runs` light

    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_by is None or proc.create_time() <= started_by + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # exists, owned by someone else
        return True
