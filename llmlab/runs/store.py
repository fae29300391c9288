"""The run store: a folder of run folders, and the table of runs the history panel shows.

>>> import tempfile
>>> store = RunStore(tempfile.mkdtemp())
>>> run = store.create(name="baseline", training={"lr": 3e-4})
>>> store.list()["name"].to_list()
['baseline']
"""

from __future__ import annotations

import errno
import functools
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from llmlab.runs.layout import (
    CORRUPT,
    STATUSES,
    RunNotFoundError,
    RunStoreError,
    check_run_id,
    is_valid_run_id,
    new_run_id,
    parse_iso,
    resolve_store_path,
    run_id_time,
)
from llmlab.runs.manifest import (
    effective_status,
    git_info,
    new_manifest,
    read_manifest,
    write_manifest,
)
from llmlab.runs.run import Run

if TYPE_CHECKING:
    import polars as pl

#: Columns of ``RunStore.list()`` and their polars dtypes.
LIST_COLUMNS = {
    "id": "String", "name": "String", "kind": "String", "status": "String",
    "created_at": "String", "updated_at": "String", "ended_at": "String",
    "family": "String", "params": "Int64", "steps": "Int64",
    "train_loss": "Float64", "val_loss": "Float64", "tokens_per_s": "Float64",
    "mfu": "Float64", "tags": "List[String]",
    "path": "String", "error": "String",
}
#: Summary keys shown as the list's loss columns.
TRAIN_LOSS, VAL_LOSS = "train/loss", "val/loss"
#: Summary keys shown as the list's throughput columns (their last logged value; MFU only
#: where the device's peak was known).
TOKENS_PER_S, MFU = "tokens_per_s", "mfu"
_ID_ATTEMPTS = 20


class RunStore:
    """A folder holding one sub-folder per run (default ``./llmlab-runs`` or ``$LLMLAB_RUNS_DIR``).

    Reading never creates anything; ``create`` makes the folder when missing.

    >>> store = RunStore("/tmp/llmlab-doc-runs")
    >>> store.path.name
    'llmlab-doc-runs'
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = resolve_store_path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunStoreError(f"run store {self.path} is a file, not a folder; pass a folder "
                                f"path (or set $LLMLAB_RUNS_DIR)")

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- writing ----------------------------------------------------------------------------

    def create(self, *, name: str | None = None, kind: str = "train", config: Any = None,
               training: dict[str, Any] | None = None, seed: int | None = None,
               data: dict[str, Any] | None = None, device: str | None = None,
               tags: Iterable[str] = (), auto_flush_seconds: float | None = 2.0,
               capture_git: bool = True, params: int | None = None) -> Run:
        """Create a run with status "running" and return it (also a context manager).

        The run folder appears complete (with its manifest) or not at all; two processes
        creating runs at once always get distinct ids.

        >>> with store.create(name="tiny", seed=0) as run:
        ...     run.log_metrics({"train/loss": 3.2}, step=1)
        """
        fields = dict(name=name, kind=kind, config=config, training=training, seed=seed,
                      data=data, device=device, tags=tags, params=params,
                      git=git_info() if capture_git else None)
        self._make_folder()
        for _ in range(_ID_ATTEMPTS):
            run_id = new_run_id()
            if self._publish(run_id, new_manifest(run_id, **fields)):
                run = Run(self, run_id, auto_flush_seconds=auto_flush_seconds)
                return run.acquire_writer()
        raise RunStoreError(f"could not find a free run id in {self.path} after {_ID_ATTEMPTS} "
                            "tries; check that the folder is writable and not full")

    def _make_folder(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunStoreError(f"cannot create run store folder {self.path} "
                                f"({exc.strerror or exc}); pass a writable folder "
                                "(or set $LLMLAB_RUNS_DIR)") from exc

    def _publish(self, run_id: str, manifest: dict[str, Any]) -> bool:
        """Write the run in a hidden staging folder, then rename it into place.

        False when the id is taken. Renaming onto a non-empty folder fails on every OS, so
        two creators cannot both win one id.
        """
        staging = self.path / f".{run_id}.{secrets.token_hex(4)}.creating"
        try:
            staging.mkdir()
            write_manifest(staging, manifest)
            os.rename(staging, self.path / run_id)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, FileExistsError) or exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return False
            raise RunStoreError(f"cannot write a run into {self.path} ({exc.strerror or exc}); "
                                "pass a writable folder (or set $LLMLAB_RUNS_DIR)") from exc
        return True

    def delete(self, run_id: str, *, force: bool = False) -> None:
        """Delete a run folder. A run that is still running needs ``force=True``.

        >>> store.delete(run.id)
        """
        run = self.get(run_id)
        if run.status == "running" and not force:
            raise RunStoreError(f"run {run_id} is still running; finish or stop it first, "
                                "or pass force=True")
        trash = self.path / f".{run_id}.{secrets.token_hex(4)}.deleting"
        try:
            os.rename(run.path, trash)  # gone from listings at once, even if rmtree is slow
            shutil.rmtree(trash)
        except OSError as exc:
            raise RunStoreError(f"cannot delete run {run_id} ({exc.strerror or exc}); "
                                f"check the permissions of {self.path}") from exc

    # -- reading ----------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run with id ``run_id`` (:class:`RunNotFoundError` when there is none).

        >>> store.get(run.id).name
        'tiny'
        """
        folder = self.path / check_run_id(run_id)
        if not folder.is_dir():
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}; "
                                   "llmlab.runs.list() shows the runs there")
        return Run(self, run_id)

    def run_ids(self) -> list[str]:
        """Ids of the run folders, in no particular order (hidden and other names skipped)."""
        try:
            entries = [e for e in os.scandir(self.path) if is_valid_run_id(e.name)]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunStoreError(f"cannot read run store {self.path} ({exc.strerror or exc}); "
                                "check that it is a readable folder") from exc
        return [e.name for e in entries if _is_dir(e)]

    def runs(self) -> list[Run]:
        """Every run, newest first."""
        found = [Run(self, run_id) for run_id in self.run_ids()]
        return sorted(found, reverse=True,
                      key=lambda r: _age(r.id, r._manifest_or_empty().get("created_at")))

    def list(self) -> pl.DataFrame:
        """One row per run, newest first: the columns of ``LIST_COLUMNS``. Never raises on a bad
        run: an unreadable manifest gives status "corrupt" and an ``error`` saying why.

        >>> store.list().select("name", "status", "steps").row(0)
        ('tiny', 'finished', 1)
        """
        import polars as pl

        rows = sorted((_row(self, run_id) for run_id in self.run_ids()), reverse=True,
                      key=lambda row: _age(row["id"], row["created_at"]))
        return pl.DataFrame(rows, schema=list_schema())

    def compare(self, run_ids: str | Iterable[str], metric: str = TRAIN_LOSS) -> pl.DataFrame:
        """Long table ``run_id, step, value`` of one metric across runs, to overlay curves.

        >>> store.compare([run.id], "train/loss").columns
        ['run_id', 'step', 'value']
        """
        import polars as pl

        ids = [run_ids] if isinstance(run_ids, str) else [*run_ids]
        frames = [_curve(self.get(run_id), metric) for run_id in ids]
        if not frames:
            return pl.DataFrame(schema={"run_id": pl.String, "step": pl.Int64,
                                        "value": pl.Float64})
        return pl.concat(frames)


def list_schema() -> dict[str, Any]:
    """``LIST_COLUMNS`` as a polars schema."""
    import polars as pl

    return {name: pl.List(pl.String) if dtype == "List[String]" else getattr(pl, dtype)
            for name, dtype in LIST_COLUMNS.items()}


#: Text columns the listing's filter looks in (besides the tags).
MATCHED_COLUMNS = ("name", "id", "family", "kind")


def filter_runs(frame: pl.DataFrame, text: str | None) -> pl.DataFrame:
    """The rows of a ``RunStore.list()`` frame whose name, id, family, kind or one of whose
    tags contains ``text`` (case-insensitive, literal); all rows for an empty ``text``.

    >>> filter_runs(store.list(), "TIN").get_column("name").to_list()
    ['tiny']
    """
    import polars as pl

    text = (text or "").strip().lower()
    if not text:
        return frame
    found = [pl.col(column).str.to_lowercase().str.contains(text, literal=True).fill_null(False)
             for column in MATCHED_COLUMNS]
    tags = pl.col("tags").list.eval(pl.element().str.to_lowercase().str.contains(
        text, literal=True)).list.any().fill_null(False)
    return frame.filter(pl.any_horizontal(*found, tags))


def _curve(run: Run, metric: str) -> pl.DataFrame:
    import polars as pl

    rows = run.metrics_long.filter(pl.col("name") == metric)
    last = rows.group_by("step", maintain_order=True).agg(pl.col("value").last()).sort("step")
    return last.select(pl.lit(run.id, dtype=pl.String).alias("run_id"), "step", "value")


def _age(run_id: str, created_at: Any) -> tuple[float, str]:
    """Sort key, oldest first: creation time (from the id when the manifest is unreadable)."""
    return parse_iso(created_at) or parse_iso(run_id_time(run_id)) or 0.0, run_id


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether a store entry is a folder; a symlink loop or a dangling link counts as one, so
    that the listing shows it as corrupt instead of hiding it."""
    try:
        return entry.is_dir() or entry.is_symlink()
    except OSError:
        return True


def _row(store: RunStore, run_id: str) -> dict[str, Any]:
    """The listing row of one run; any failure to read it gives a "corrupt" row saying why."""
    path = store.path / run_id
    row: dict[str, Any] = {name: None for name in LIST_COLUMNS}
    row.update(id=run_id, name=run_id, path=str(path), tags=[])
    try:
        filled = _manifest_row(row, read_manifest(path))
    except RunStoreError as exc:
        filled = {**row, "status": CORRUPT, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the listing must survive any one run
        filled = {**row, "status": CORRUPT,
                  "error": f"cannot read run {run_id} ({type(exc).__name__}: {exc})"}
    return {k: _clean_text(v) for k, v in filled.items()}


def _clean_text(value: Any) -> Any:
    """Strings made encodable (a lone surrogate from JSON becomes "?"), lists likewise."""
    if isinstance(value, str) and not value.isascii():
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_clean_text(v) for v in value]
    return value


def _manifest_row(row: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    run_id = row["id"]
    config = _dict(manifest.get("config"))
    summary = _dict(manifest.get("summary")) or {}
    counted = _int(manifest.get("params"))  # set when the model differs from its config
    row.update(
        name=_str(manifest.get("name")) or run_id, kind=_str(manifest.get("kind")),
        status=effective_status(manifest), created_at=_str(manifest.get("created_at")),
        updated_at=_str(manifest.get("updated_at")), ended_at=_str(manifest.get("ended_at")),
        family=_str(config.get("family")) if config else None,
        params=counted if counted is not None else _params(config),
        steps=_int(manifest.get("last_step")), train_loss=_float(summary.get(TRAIN_LOSS)),
        val_loss=_float(summary.get(VAL_LOSS)), tokens_per_s=_float(summary.get(TOKENS_PER_S)),
        mfu=_float(summary.get(MFU)), error=_str(manifest.get("error")),
        tags=_tags(manifest.get("tags")),
    )
    if row["status"] == CORRUPT:
        row["error"] = (f"manifest status {manifest.get('status')!r} is not one of {STATUSES}; "
                        "fix it with run.update_manifest(status=...)")
    return row


def _tags(value: Any) -> list[str]:
    """The manifest's tags: a list of strings (a bare string is one tag, not its letters)."""
    if isinstance(value, str):
        return [value]
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def _params(config: dict[str, Any] | None) -> int | None:
    if not config:
        return None
    try:
        key = json.dumps(config, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return _params_of_json(key)


@functools.lru_cache(maxsize=256)
def _params_of_json(config_json: str) -> int | None:
    """Parameter count of a config, memoised: a store holds many runs of few configs, and
    validating a ``ModelConfig`` per row was 80% of ``list()`` on 1,000 runs."""
    try:
        from llmlab.config import ModelConfig
        from llmlab.estimate import param_count

        return param_count(ModelConfig.from_dict(json.loads(config_json)))
    except Exception:  # noqa: BLE001 - a config from another llmlab version must not break list()
        return None


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else None
