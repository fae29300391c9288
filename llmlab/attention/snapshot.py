"""Attention snapshots on disk: ``cap.save(run)`` writes one, ``load_snapshot`` reads it back.

Format (``docs/attention-snapshots.md``)::

    <run>/artifacts/attention/<name>/
      snapshot.json             what is inside: model, tokens, kinds, layers, heads, file sizes
      <kind>/layer-<LLL>.npz    one zip per layer, member head-<HHH>.npy = float16 [T, S]
      <kind>/thumbs.npy         uint8 [layers, heads, t, s] thumbnails (the widget's grid)
      predictions.npz           final top-k ids and probabilities, when the model has an LM head
      lens.npz                  logit lens top-k per layer, when it was computed

Members are compressed with zlib (ZIP_DEFLATED); numpy reads one member of a zip without
decompressing the others, so a reader gets one head of one layer cheaply. Nothing is
pickled: readers use ``numpy.load(..., allow_pickle=False)``. A snapshot is written into a
hidden staging folder and renamed into place, so readers never see half of one.

>>> path = cap.save(run)                          # doctest: +SKIP
>>> cap2 = load_snapshot(path)                    # doctest: +SKIP
>>> SnapshotReader(path).head("decoder", 3, 5)    # one head, float16 [T, S]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmlab.attention import ops
from llmlab.attention.capture import KINDS, Capture, Side
from llmlab.attention.lens import LogitLens, TopK
from llmlab.errors import SnapshotError
from llmlab.formats import Format

__all__ = ["FORMAT", "FORMAT_VERSION", "OLDEST_FORMAT_VERSION", "SnapshotError", "SnapshotReader",
           "list_snapshots", "load_snapshot", "save_snapshot"]

FORMAT = "llmlab-attention-snapshot"
FORMAT_VERSION = 1
#: The first format version llmlab wrote; anything lower was never an llmlab file.
OLDEST_FORMAT_VERSION = 1
SNAPSHOT_FORMAT = Format(FORMAT, FORMAT_VERSION, oldest=OLDEST_FORMAT_VERSION,
                         what="an llmlab attention snapshot",
                         redo="save the capture again with cap.save(run, name)")
META_FILE = "snapshot.json"
SNAPSHOTS_DIR = "attention"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)


# ====================================================================== writing
def _target(run_or_path: Any, name: str | None) -> Path:
    if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
        raise SnapshotError(
            f"snapshot name {name!r} must be 1-128 letters, digits, '.', '_' or '-', not "
            "starting with '.' or '-' (it becomes a folder name)."
        )
    if hasattr(run_or_path, "artifacts_dir"):  # a llmlab.runs.Run
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        return Path(run_or_path.artifacts_dir) / SNAPSHOTS_DIR / (
            name or f"snapshot-{stamp}-{secrets.token_hex(2)}")
    if isinstance(run_or_path, (str, os.PathLike)):
        folder = Path(run_or_path).expanduser()
        return folder / name if name else folder
    raise SnapshotError(
        f"save needs a run (llmlab.runs.Run) or a folder path, got {type(run_or_path).__name__}."
    )


def _write_npz(path: Path, arrays: dict[str, np.ndarray], level: int) -> int:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for key, arr in arrays.items():
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    return path.stat().st_size


def save_snapshot(cap: Capture, run_or_path: Any, name: str | None = None, *,
                  overwrite: bool = False, compresslevel: int = 1, thumb_size: int = 32) -> Path:
    """Write ``cap`` as a snapshot and return its folder.

    ``run_or_path``: a run (the snapshot goes to ``run.artifacts_dir / "attention" / name``,
    ``name`` defaulting to ``snapshot-<UTC time>-<hex>``) or a folder (with ``name``, a
    folder inside it). An existing snapshot is replaced only with ``overwrite=True``.
    Attention is stored as float16 whatever the capture's dtype.
    """
    folder = _target(run_or_path, name)
    if folder.exists():
        if not folder.is_dir():
            raise SnapshotError(f"{folder} exists and is not a folder; pick another name.")
        is_snapshot = (folder / META_FILE).exists()
        if is_snapshot and not overwrite:
            raise SnapshotError(
                f"a snapshot already exists at {folder}; pass overwrite=True to replace it, or "
                "another name."
            )
        if not is_snapshot and any(folder.iterdir()):
            raise SnapshotError(
                f"{folder} is a folder with other files, not a snapshot; pick another folder."
            )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.partial"
    staging.mkdir()
    try:
        files = _write_contents(cap, staging, compresslevel, thumb_size)
        meta = _metadata(cap, folder.name, files)
        (staging / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False),
                                         encoding="utf-8")
        _swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _write_contents(cap: Capture, staging: Path, level: int, thumb_size: int) -> dict[str, int]:
    jobs = []
    for kind in cap.kinds:
        (staging / kind).mkdir()
        for row, layer in enumerate(cap.layers[kind]):
            jobs.append((f"{kind}/layer-{layer:03d}.npz", kind, row))

    def write_layer(job: tuple[str, str, int]) -> int:
        rel, kind, row = job  # convert one layer at a time: no second copy of the capture
        att = cap.attention[kind][row].to(torch.float16)
        arrays = {f"head-{h:03d}": att[i].numpy() for i, h in enumerate(cap.heads)}
        return _write_npz(staging / rel, arrays, level)

    files: dict[str, int] = {}
    # zlib releases the GIL: layers compress in parallel
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for job, size in zip(jobs, pool.map(write_layer, jobs)):
            files[job[0]] = size
    for kind in cap.kinds:
        rel = f"{kind}/thumbs.npy"
        np.save(staging / rel, ops.thumbnails(cap.attention[kind], thumb_size).numpy(),
                allow_pickle=False)
        files[rel] = (staging / rel).stat().st_size
    if cap.predictions is not None:
        p = cap.predictions
        files["predictions.npz"] = _write_npz(staging / "predictions.npz", {
            "ids": p.ids.numpy().astype(np.int32), "probs": p.probs.numpy().astype(np.float16)},
            level)
    if cap._lens is not None:
        lens = cap._lens
        files["lens.npz"] = _write_npz(staging / "lens.npz", {
            "ids": lens.ids.numpy().astype(np.int32),
            "probs": lens.probs.numpy().astype(np.float16)}, level)
    return files


def _vocab(ids: torch.Tensor, tokens: list) -> dict[str, str]:
    flat_tokens: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, str):
            flat_tokens.append(x)
        else:
            for y in x:
                walk(y)

    walk(tokens)
    return {str(i): s for i, s in zip(ids.flatten().tolist(), flat_tokens)}


def _metadata(cap: Capture, name: str, files: dict[str, int]) -> dict[str, Any]:
    from llmlab._version import __version__

    kinds = {}
    for kind in cap.kinds:
        q, k = KINDS[kind]
        kinds[kind] = {
            "query_side": q, "key_side": k, "layers": cap.layers[kind],
            "n_layers": cap.n_layers[kind], "shape": list(cap.attention[kind].shape[2:]),
            "files": {str(layer): f"{kind}/layer-{layer:03d}.npz" for layer in cap.layers[kind]},
            "thumbs": f"{kind}/thumbs.npy",
        }
    meta: dict[str, Any] = {
        **SNAPSHOT_FORMAT.header(),
        "name": name,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "llmlab_version": __version__,
        "family": cap.family,
        "config": cap.config,
        "dtype": "float16",
        "heads": cap.heads,
        "n_heads": cap.n_heads,
        "sentence_b_start": cap.sentence_b_start,
        "sides": {n: {"text": s.text, "ids": s.ids, "tokens": s.tokens, "special": s.special}
                  for n, s in cap.sides.items()},
        "kinds": kinds,
        "files": files,
        "predictions": None,
        "lens": None,
    }
    if cap.predictions is not None:
        meta["predictions"] = {"file": "predictions.npz",
                               "vocab": _vocab(cap.predictions.ids, cap.predictions.tokens)}
    if cap._lens is not None:
        lens = cap._lens
        meta["lens"] = {"file": "lens.npz", "layers": lens.layer_names, "side": lens.side,
                        "what": lens.what, "vocab": _vocab(lens.ids, lens.tokens)}
    return meta


def _swap_in(staging: Path, folder: Path) -> None:
    if not folder.exists():
        os.replace(staging, folder)
        return
    old = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.old"
    os.replace(folder, old)
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ====================================================================== reading
class SnapshotReader:
    """Read a snapshot a piece at a time (what the lab panel does): the metadata on opening,
    then one head, one layer or the thumbnails on request.

    >>> r = SnapshotReader(path)          # doctest: +SKIP
    >>> r.head("decoder", layer=3, head=5).shape    # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path).expanduser()
        meta_path = self.path / META_FILE
        if not self.path.is_dir():
            raise SnapshotError(
                f"no attention snapshot at {self.path} (not a folder); pass the folder that "
                "cap.save(...) returned, or see llmlab.attention.list_snapshots(run)."
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SnapshotError(
                f"{self.path} has no {META_FILE}, so it is not a complete attention snapshot "
                "(an interrupted save leaves none); save the capture again."
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SnapshotError(
                f"{meta_path} is truncated or corrupt ({e}); save the capture again."
            ) from None
        SNAPSHOT_FORMAT.check(meta, meta_path, SnapshotError)
        for key in ("sides", "kinds", "heads", "files", "family"):
            if key not in meta:
                raise SnapshotError(f"{meta_path} lacks {key!r}; save the capture again.")
        self.meta: dict[str, Any] = meta

    @property
    def kinds(self) -> list[str]:
        return [k for k in KINDS if k in self.meta["kinds"]]

    def _file(self, rel: str) -> Path:
        expected = self.meta["files"].get(rel)
        path = self.path / rel
        if expected is None:
            raise SnapshotError(f"{rel} is not listed in {self.path / META_FILE}.")
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise SnapshotError(
                f"{path} is missing from the snapshot; save the capture again."
            ) from None
        if size != expected:
            raise SnapshotError(
                f"{path} is truncated or was changed ({size} bytes, the snapshot recorded "
                f"{expected}); save the capture again."
            )
        return path

    def _load(self, rel: str, members: list[str] | None = None) -> dict[str, np.ndarray]:
        path = self._file(rel)
        try:
            if rel.endswith(".npy"):
                return {"": np.load(path, allow_pickle=False)}
            with np.load(path, allow_pickle=False) as npz:
                return {m: npz[m] for m in (members if members is not None else npz.files)}
        except (zipfile.BadZipFile, zlib.error, ValueError, KeyError, OSError, EOFError) as e:
            raise SnapshotError(
                f"{path} is corrupt ({type(e).__name__}: {e}); save the capture again."
            ) from None

    def _layer_file(self, kind: str, layer: int) -> str:
        if kind not in self.meta["kinds"]:
            raise SnapshotError(f"kind {kind!r} is not in this snapshot; it has {self.kinds}.")
        files = self.meta["kinds"][kind]["files"]
        if str(layer) not in files:
            raise SnapshotError(
                f"layer {layer} of the {kind} is not in this snapshot (layers "
                f"{self.meta['kinds'][kind]['layers']})."
            )
        return files[str(layer)]

    def head(self, kind: str, layer: int, head: int) -> np.ndarray:
        """One head's matrix, float16 ``[T, S]``, reading only that member of the layer file."""
        if head not in self.meta["heads"]:
            raise SnapshotError(f"head {head} is not in this snapshot (heads {self.meta['heads']}).")
        member = f"head-{head:03d}"
        return self._load(self._layer_file(kind, layer), [member])[member]

    def layer(self, kind: str, layer: int) -> np.ndarray:
        """All heads of one layer, float16 ``[H, T, S]`` (heads in ``meta["heads"]`` order)."""
        members = [f"head-{h:03d}" for h in self.meta["heads"]]
        arrays = self._load(self._layer_file(kind, layer), members)
        return np.stack([arrays[m] for m in members])

    def thumbs(self, kind: str) -> np.ndarray:
        """uint8 ``[layers, heads, t, s]`` thumbnails of a kind."""
        return self._load(self.meta["kinds"][kind]["thumbs"])[""]

    def lens(self) -> LogitLens | None:
        """The saved logit lens (top-k per layer and position), or None when none was saved."""
        info = self.meta.get("lens")
        if not info:
            return None
        arrays = self._load(info["file"])
        vocab = info["vocab"]
        ids = torch.from_numpy(arrays["ids"].astype(np.int64))
        tokens = [[[vocab.get(str(i), f"<{i}>") for i in row] for row in layer]
                  for layer in ids.tolist()]
        return LogitLens(list(info["layers"]), ids,
                         torch.from_numpy(arrays["probs"].astype(np.float32)), tokens,
                         info["side"], info["what"])

    def capture(self) -> Capture:
        """Everything, as a :class:`Capture` (attention in float16)."""
        m = self.meta
        sides = {n: Side(s.get("text"), list(s["ids"]), list(s["tokens"]), list(s["special"]))
                 for n, s in m["sides"].items()}
        attention, layers, n_layers = {}, {}, {}
        for kind in self.kinds:
            info = m["kinds"][kind]
            layers[kind] = list(info["layers"])
            n_layers[kind] = info.get("n_layers", max(layers[kind]) + 1)
            stacked = [torch.from_numpy(self.layer(kind, layer)) for layer in layers[kind]]
            attention[kind] = torch.stack(stacked)
            expected = (len(layers[kind]), len(m["heads"]), *info["shape"])
            if tuple(attention[kind].shape) != expected:
                raise SnapshotError(
                    f"the {kind} attention in {self.path} has shape "
                    f"{tuple(attention[kind].shape)}, the snapshot says {expected}; save again."
                )
        predictions, lens = None, self.lens()
        if m.get("predictions"):
            arrays = self._load(m["predictions"]["file"])
            vocab = m["predictions"]["vocab"]
            ids = torch.from_numpy(arrays["ids"].astype(np.int64))
            predictions = TopK(ids, torch.from_numpy(arrays["probs"].astype(np.float32)),
                               [[vocab.get(str(i), f"<{i}>") for i in row] for row in ids.tolist()])
        return Capture(family=m["family"], attention=attention, layers=layers,
                       heads=list(m["heads"]), n_heads=m.get("n_heads", len(m["heads"])),
                       n_layers=n_layers, sides=sides, config=m.get("config"),
                       sentence_b_start=m.get("sentence_b_start"), predictions=predictions,
                       lens=lens)


def load_snapshot(path: str | os.PathLike | Any, name: str | None = None) -> Capture:
    """A saved snapshot as a :class:`Capture`: ``load_snapshot(folder)`` or
    ``load_snapshot(run, name)``. Truncated or corrupt files raise :class:`SnapshotError`."""
    if hasattr(path, "artifacts_dir"):
        if name is None:
            raise SnapshotError(
                f"load_snapshot(run, name) needs the snapshot's name; this run has "
                f"{list_snapshots(path)}."
            )
        path = Path(path.artifacts_dir) / SNAPSHOTS_DIR / name
    elif name is not None:
        path = Path(path) / name
    return SnapshotReader(path).capture()


def list_snapshots(run_or_folder: Any) -> list[str]:
    """Names of the complete snapshots of a run (or in a folder of snapshots), sorted."""
    base = (Path(run_or_folder.artifacts_dir) / SNAPSHOTS_DIR
            if hasattr(run_or_folder, "artifacts_dir") else Path(run_or_folder))
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir()
                  if not p.name.startswith(".") and (p / META_FILE).is_file())
