"""Attention snapshots of the run store as the lab's Attention inspector panel reads them.

No HTTP here (``handlers.py`` maps these calls to REST): listing the snapshots of a store or
a run, describing one for the inspector front end, its thumbnails, and one matrix (a head,
or an aggregate the front end asks for) as little-endian float16 bytes. Matrices come from
:meth:`llmlab.attention.Capture.matrix` on a capture holding only the layers and heads the
answer needs, so the panel shows exactly what the notebook widget shows.

>>> entries = list_snapshots(RunStore("llmlab-runs"))          # doctest: +SKIP
>>> snap = open_snapshot(store.get(run_id), "tired-animal")     # doctest: +SKIP
>>> body, (rows, cols) = matrix_bytes(snap, "decoder", 3, 5)    # doctest: +SKIP
>>> lens_rows(snap, 4)["tokens"][-1]                           # doctest: +SKIP

torch, numpy and the snapshot reader are imported on first use, not when the server starts.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from llmlab.attention.snapshot import SnapshotReader
    from llmlab.runs import Run, RunStore

__all__ = ["AGGREGATES", "OpenSnapshot", "SnapshotRequestError", "json_type",
           "lens_rows", "list_snapshots", "matrix_bytes", "open_snapshot"]

#: What the front end may ask for instead of a head number (as the widget accepts).
AGGREGATES = ("mean", "max", "rollout")
_OPEN_CACHE = 8
_MATRIX_CACHE = 8


class SnapshotRequestError(Exception):
    """A request the server must refuse: ``status`` is the HTTP status, the text the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ====================================================================== listing
def _snapshots_dir(run: Run) -> Path:
    from llmlab.attention.snapshot import SNAPSHOTS_DIR

    return run.artifacts_dir / SNAPSHOTS_DIR


def list_snapshots(store: RunStore, run: Run | None = None) -> list[dict[str, Any]]:
    """Every snapshot folder of ``run`` (or of every run, newest run first), readable or not.

    Each entry has ``run_id``, ``run_name``, ``run_status``, ``name`` and either the
    snapshot's ``created_at``, ``family``, ``format_version``, ``kinds`` (kind -> ``[T, S]``)
    or an ``error`` saying why it cannot be opened (a save cut short, a newer format...).
    """
    if run is not None:
        runs = [run]
    else:
        runs = [store.get(run_id) for run_id in store.run_ids()]
        runs = sorted((r for r in runs if _snapshots_dir(r).is_dir()), key=_created,
                      reverse=True)
    entries: list[dict[str, Any]] = []
    for r in runs:
        folder = _snapshots_dir(r)
        try:
            names = sorted(p.name for p in folder.iterdir()
                           if not p.name.startswith(".") and p.is_dir()) if folder.is_dir() else []
        except OSError:
            continue  # an unreadable attention folder: that run shows no snapshots
        if not names:
            continue
        run_info = {"run_id": r.id, "run_name": r.name, "run_status": r.status}
        entries.extend(_entry(run_info, folder / name) for name in names)
    return entries


def _created(run: Run) -> tuple[str, str]:
    """Newest-first sort key: creation time (ids share a second), then the id."""
    from llmlab.runs import RunStoreError

    try:
        created = run.manifest.get("created_at")
    except RunStoreError:
        created = None
    return (created if isinstance(created, str) else "", run.id)


def _entry(run_info: dict[str, Any], folder: Path) -> dict[str, Any]:
    from llmlab.attention.snapshot import SnapshotError

    entry = {**run_info, "name": folder.name, "error": None}
    try:
        meta = _read(folder).meta
    except SnapshotError as err:
        return {**entry, "error": str(err)}
    return {**entry, "created_at": meta.get("created_at"), "family": meta.get("family"),
            "format_version": meta.get("format_version"),
            "kinds": {kind: info.get("shape") for kind, info in meta["kinds"].items()}}


def _read(folder: Path) -> SnapshotReader:
    """A reader of the snapshot in ``folder``; SnapshotError when its ``snapshot.json`` is not
    a regular file (a FIFO there would block the reader), cannot be read or parsed, or has
    fields of the wrong type."""
    from llmlab.attention.snapshot import META_FILE, SnapshotError, SnapshotReader

    meta_path = folder / META_FILE
    try:
        mode = os.stat(meta_path).st_mode
    except FileNotFoundError:
        mode = None  # the reader says what a missing snapshot.json means
    except OSError as err:
        raise SnapshotError(f"{meta_path} cannot be read ({err.strerror or err}).") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise SnapshotError(f"{meta_path} is not a regular file; remove the snapshot folder "
                            "and save the capture again.")
    try:
        reader = SnapshotReader(folder)
    except RecursionError:
        raise SnapshotError(f"{meta_path} nests JSON too deeply; save the capture again."
                            ) from None
    except (OSError, ValueError) as err:
        raise SnapshotError(f"{meta_path} cannot be read ({err}); save the capture again."
                            ) from None
    problem = _META(reader.meta, META_FILE)
    if problem:
        raise SnapshotError(f"{meta_path} is damaged: {problem}; save the capture again.")
    return reader


# The fields of snapshot.json the server reads, and their JSON types.
Check = Callable[[Any, str], "str | None"]


def json_type(value: Any) -> str:
    """How JSON names the type of ``value`` (for messages that must not quote it whole)."""
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"),
                       (str, "a string"), (list, "an array"), (dict, "an object"),
                       (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _leaf(test: Callable[[Any], bool], expected: str) -> Check:
    return lambda v, where: None if test(v) else f"{where} is {json_type(v)}, not {expected}"


def _fields(**checks: Check) -> Check:
    def check(value: Any, where: str) -> str | None:
        if not isinstance(value, dict):
            return f"{where} is {json_type(value)}, not an object"
        return next((p for k, c in checks.items() if (p := c(value.get(k), f"{where}.{k}"))),
                    None)
    return check


def _each(item: Check, *, array: bool = False) -> Check:
    """An object (or with ``array``, an array) whose every value passes ``item``."""
    def check(value: Any, where: str) -> str | None:
        container = list if array else dict
        if not isinstance(value, container):
            return f"{where} is {json_type(value)}, not {json_type(container())}"
        pairs = enumerate(value) if array else value.items()
        return next((p for k, v in pairs if (p := item(v, f"{where}[{k!r}]"))), None)
    return check


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TEXT = _leaf(lambda v: isinstance(v, str), "a string")
_OPT_TEXT = _leaf(lambda v: v is None or isinstance(v, str), "a string or null")
_INT = _leaf(_is_int, "an integer")
_OPT_INT = _leaf(lambda v: v is None or _is_int(v), "an integer or null")
_INTS = _each(_INT, array=True)
_SHAPE = _leaf(lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)),
               "[rows, cols]")
_META = _fields(
    created_at=_OPT_TEXT, family=_TEXT, llmlab_version=_OPT_TEXT, dtype=_OPT_TEXT,
    n_heads=_OPT_INT, heads=_INTS, files=_each(_INT),
    lens=_leaf(lambda v: v is None or isinstance(v, dict), "an object or null"),
    sides=_each(_fields(text=_OPT_TEXT, ids=_INTS, tokens=_each(_TEXT, array=True),
                        special=_each(_leaf(lambda v: isinstance(v, (bool, int)), "a flag"),
                                      array=True))),
    kinds=_each(_fields(query_side=_TEXT, key_side=_TEXT, layers=_INTS, n_layers=_OPT_INT,
                        shape=_SHAPE, files=_each(_TEXT))),
)


# ====================================================================== one snapshot
@dataclass
class OpenSnapshot:
    """A readable snapshot with what the inspector needs up front (built once, cached)."""

    run_id: str
    reader: SnapshotReader
    inspector: dict[str, Any]
    thumbs: bytes
    key: tuple = ()
    matrices: OrderedDict = field(default_factory=OrderedDict)
    lens: Any = None  # the saved LogitLens, read on the first lens request

    def describe(self) -> dict[str, Any]:
        """Metadata for the panel: the snapshot's own fields and the inspector's ``meta``."""
        meta = self.reader.meta
        return {
            "run_id": self.run_id, "name": self.reader.path.name,
            "format_version": meta["format_version"], "created_at": meta.get("created_at"),
            "llmlab_version": meta.get("llmlab_version"), "family": meta["family"],
            "config": meta.get("config"), "dtype": meta.get("dtype", "float16"),
            "heads": meta["heads"], "n_heads": meta.get("n_heads"),
            "sides": {name: {"text": s.get("text"), "tokens": s["tokens"]}
                      for name, s in meta["sides"].items()},
            "kinds": {kind: {"layers": info["layers"], "n_layers": info.get("n_layers"),
                             "shape": info["shape"], "query_side": info["query_side"],
                             "key_side": info["key_side"]}
                      for kind, info in meta["kinds"].items()},
            "inspector": self.inspector,
        }


_open: OrderedDict[tuple, OpenSnapshot] = OrderedDict()
_lock = threading.Lock()


def check_name(name: str) -> str:
    """``name`` if it can be a snapshot folder name, else a 400 naming the rule."""
    from llmlab.attention.snapshot import _NAME  # the rule save_snapshot applies

    if not _NAME.fullmatch(name):
        raise SnapshotRequestError(
            400, f"{name!r} is not a snapshot name: 1-128 letters, digits, '.', '_' or '-', "
                 "not starting with '.' or '-'.")
    return name


def open_snapshot(run: Run, name: str) -> OpenSnapshot:
    """Open snapshot ``name`` of ``run``: 404 when there is none, 422 when it cannot be read
    (half written, truncated, a format version this llmlab does not read)."""
    from llmlab.attention.snapshot import META_FILE, SnapshotError

    folder = _snapshots_dir(run) / check_name(name)
    if not folder.is_dir():
        raise SnapshotRequestError(404, f"run {run.id} has no attention snapshot {name!r}; "
                                        "save one with cap.save(run, name).")
    try:
        stat = os.stat(folder / META_FILE)
        key = (str(folder), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(folder), 0, 0)  # no snapshot.json: the reader says what that means
    with _lock:
        if key in _open:
            _open.move_to_end(key)
            return _open[key]
    try:
        reader = _read(folder)
        inspector, thumbs = _inspector_meta(reader, run)
    except SnapshotError as err:
        raise SnapshotRequestError(422, str(err)) from None
    except (IndexError, KeyError, TypeError, ValueError) as err:  # thumbnails of a wrong shape
        raise SnapshotRequestError(422, f"{folder} cannot be read ({type(err).__name__}); "
                                        "save the capture again.") from None
    snap = OpenSnapshot(run.id, reader, inspector, thumbs, key)
    with _lock:
        _open[key] = snap
        while len(_open) > _OPEN_CACHE:
            _open.popitem(last=False)
    return snap


def _inspector_meta(reader: SnapshotReader, run: Run) -> tuple[dict[str, Any], bytes]:
    """The inspector front end's ``IMeta`` (as the widget sends it) and all thumbnails."""
    from llmlab.attention.capture import Side

    meta = reader.meta
    kinds, chunks, offset = [], [], 0
    for kind in reader.kinds:
        info = meta["kinds"][kind]
        thumbs = reader.thumbs(kind)
        data = thumbs.astype("u1", copy=False).tobytes()
        layers = list(info["layers"])
        kinds.append({
            "name": kind, "query_side": info["query_side"], "key_side": info["key_side"],
            "layers": layers, "heads": list(meta["heads"]),
            "rows": int(info["shape"][0]), "cols": int(info["shape"][1]),
            "rollout": kind != "cross" and layers == list(range(len(layers))),
            "thumb_offset": offset, "thumb_rows": int(thumbs.shape[2]),
            "thumb_cols": int(thumbs.shape[3]),
        })
        chunks.append(data)
        offset += len(data)
    sides = {}
    for name, s in meta["sides"].items():
        side = Side(s.get("text"), list(s["ids"]), list(s["tokens"]), list(s["special"]))
        sides[name] = {"tokens": side.tokens, "word_of": side.word_index, "words": side.words}
    title = f"{run.name} / {reader.path.name}"
    lens_side = (meta.get("lens") or {}).get("side", "")
    return ({"title": title, "family": meta["family"], "kinds": kinds, "sides": sides,
             "lens_side": lens_side}, b"".join(chunks))


# ====================================================================== logit lens
def lens_rows(snap: OpenSnapshot, position: int) -> dict[str, Any]:
    """The saved logit lens at ``position`` of its side, as the widget sends it: 404 when
    the snapshot has no lens, 400 for a position outside the tokens."""
    from llmlab.attention.snapshot import SnapshotError
    from llmlab.errors import InputError

    if snap.lens is None:
        try:
            snap.lens = snap.reader.lens()
        except SnapshotError as err:
            raise SnapshotRequestError(422, str(err)) from None
    if snap.lens is None:
        raise SnapshotRequestError(
            404, f"snapshot {snap.reader.path.name!r} has no logit lens; save one from "
                 "llmlab.inspect(model, tok, text, logit_lens=True).")
    try:
        return snap.lens.rows(position)
    except InputError as err:
        raise SnapshotRequestError(400, str(err)) from None


# ====================================================================== matrices
def parse_head(value: str) -> int | str:
    """A head number or one of AGGREGATES, from a query argument."""
    if value in AGGREGATES:
        return value
    try:
        return int(value)
    except ValueError:
        raise SnapshotRequestError(
            400, f"head={value!r}; give a head number or one of {', '.join(AGGREGATES)}."
        ) from None


def matrix_bytes(snap: OpenSnapshot, kind: str, layer: int, head: int | str, *,
                 hide_first: bool = False, merge_words: bool = False,
                 ) -> tuple[bytes, tuple[int, int]]:
    """One matrix as little-endian float16 bytes and its ``(rows, cols)``: head ``head`` of
    ``layer`` (or the mean / max over heads, or the rollout up to ``layer``), transformed as
    the widget does (``hide_first``, ``merge_words``). Reads only the layer files it needs."""
    key = (kind, layer, head, hide_first, merge_words)
    with _lock:
        if key in snap.matrices:
            snap.matrices.move_to_end(key)
            return snap.matrices[key]
    m = _matrix(snap.reader, kind, layer, head, hide_first=hide_first,
                merge_words=merge_words)
    answer = (m.numpy().astype("<f2").tobytes(), (int(m.shape[0]), int(m.shape[1])))
    with _lock:
        snap.matrices[key] = answer
        while len(snap.matrices) > _MATRIX_CACHE:
            snap.matrices.popitem(last=False)
    return answer


def _check_request(reader: SnapshotReader, kind: str, layer: int, head: int | str) -> dict:
    meta = reader.meta
    if kind not in meta["kinds"]:
        raise SnapshotRequestError(400, f"kind={kind!r}; this snapshot holds {reader.kinds}.")
    info = meta["kinds"][kind]
    if layer not in info["layers"]:
        raise SnapshotRequestError(
            400, f"layer={layer} is not in this snapshot's {kind} (layers {info['layers']}).")
    if isinstance(head, int) and head not in meta["heads"]:
        raise SnapshotRequestError(
            400, f"head={head} is not in this snapshot (heads {meta['heads']}) and not one of "
                 f"{', '.join(AGGREGATES)}.")
    if head == "rollout" and (kind == "cross"
                              or info["layers"] != list(range(len(info["layers"])))):
        raise SnapshotRequestError(
            400, f"no rollout for the {kind}: rollout needs self-attention with every layer "
                 f"from 0 (this snapshot has layers {info['layers']}).")
    return info


def _matrix(reader: SnapshotReader, kind: str, layer: int, head: int | str, *,
            hide_first: bool, merge_words: bool):
    """Capture.matrix on a capture of just the layers and heads this answer needs."""
    import torch

    from llmlab.attention.capture import Capture, Side
    from llmlab.attention.snapshot import SnapshotError
    from llmlab.errors import InputError

    info = _check_request(reader, kind, layer, head)
    meta = reader.meta
    heads, layers = list(meta["heads"]), [layer]
    try:
        if head == "rollout":  # rollout averages heads first: keep one mean head per layer
            layers = list(range(layer + 1))
            att = torch.stack([torch.from_numpy(reader.layer(kind, n)).float().mean(0, True)
                               for n in layers])
            heads = [0]
        elif head in ("mean", "max"):
            att = torch.from_numpy(reader.layer(kind, layer))[None]
        else:
            att = torch.from_numpy(reader.head(kind, layer, head))[None, None]
            heads = [head]
    except SnapshotError as err:
        raise SnapshotRequestError(422, str(err)) from None
    sides = {name: Side(s.get("text"), list(s["ids"]), list(s["tokens"]), list(s["special"]))
             for name, s in meta["sides"].items()}
    cap = Capture(family=meta["family"], attention={kind: att}, layers={kind: layers},
                  heads=heads, n_heads=max(meta.get("n_heads") or 0, max(heads) + 1),
                  n_layers={kind: info.get("n_layers") or max(info["layers"]) + 1},
                  sides=sides)
    try:
        return cap.matrix(kind, layer, head, hide_first=hide_first, merge_words=merge_words)
    except InputError as err:
        raise SnapshotRequestError(400, str(err)) from None
