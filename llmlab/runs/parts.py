"""Append-only tables stored as Arrow IPC part files: ``part-<seq>.arrow`` per flush, merged into
``part-<first>-<last>.arrow`` by compaction. polars is imported inside the functions.

A range file covers every single part whose seq lies in its range; readers skip covered
singles, so the moment between writing a range and deleting its singles reads the same rows.

>>> import tempfile; folder = Path(tempfile.mkdtemp())
>>> _ = write_part(folder, 1, [(1, "loss", 2.5, 0.0)], METRICS)
>>> read_parts(folder, METRICS)["value"].to_list()
[2.5]
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmlab._files import write_bytes_atomic
from llmlab.runs.layout import RunStoreWarning

if TYPE_CHECKING:
    import polars as pl

#: Column name -> polars dtype name of each table (names, so this module imports no polars).
METRICS = {"step": "Int64", "name": "String", "value": "Float64", "time": "Float64"}
SAMPLES = {"step": "Int64", "prompt": "String", "text": "String", "time": "Float64"}

_PART = re.compile(r"part-([0-9]{8,})(?:-([0-9]{8,}))?\.arrow", re.ASCII)
_MAGIC = b"ARROW1"
_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Part:
    """One part file holding seqs ``first..last``; ``is_range`` for a compacted file."""

    first: int
    last: int
    path: Path
    is_range: bool = False


def part_name(first: int, last: int | None = None) -> str:
    """File name of a single part (``last`` None) or of a compacted range.

    >>> part_name(3), part_name(1, 128)
    ('part-00000003.arrow', 'part-00000001-00000128.arrow')
    """
    return f"part-{first:08d}.arrow" if last is None else f"part-{first:08d}-{last:08d}.arrow"


def scan_parts(folder: Path) -> list[Part]:
    """Every part file in ``folder`` (temp files and other names ignored), by first seq."""
    try:
        names = [entry.name for entry in Path(folder).iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    parts = []
    for name in names:
        m = _PART.fullmatch(name)
        if m:
            first, last = int(m.group(1)), int(m.group(2) or m.group(1))
            parts.append(Part(first, last, Path(folder) / name, m.group(2) is not None))
    return sorted(parts, key=lambda p: (p.first, -p.last))


def live_parts(parts: list[Part]) -> list[Part]:
    """``parts`` without those a wider range file already covers."""
    ranges = [p for p in parts if p.is_range]
    return [p for p in parts if not any(_covers(r, p) for r in ranges)]


def _covers(outer: Part, inner: Part) -> bool:
    if outer is inner or not (outer.first <= inner.first and inner.last <= outer.last):
        return False
    return not inner.is_range or outer.last - outer.first > inner.last - inner.first


def next_seq(folder: Path) -> int:
    """The seq the next part in ``folder`` gets: one past the highest seq present."""
    return max((p.last for p in scan_parts(folder)), default=0) + 1


def _polars_schema(schema: dict[str, str]) -> dict[str, Any]:
    import polars as pl

    return {name: getattr(pl, dtype) for name, dtype in schema.items()}


def empty_frame(schema: dict[str, str]) -> pl.DataFrame:
    """A frame with no rows and the table's columns."""
    import polars as pl

    return pl.DataFrame(schema=_polars_schema(schema))


def write_part(folder: Path, seq: int, rows: list[tuple], schema: dict[str, str]) -> Path:
    """Write ``rows`` (tuples in schema order) as ``part-<seq>.arrow``, atomically."""
    import polars as pl

    frame = pl.DataFrame(rows, schema=_polars_schema(schema), orient="row")
    return _write_frame(Path(folder) / part_name(seq), frame)


def _write_frame(path: Path, frame: pl.DataFrame) -> Path:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    write_bytes_atomic(path, buffer.getvalue())
    return path


def read_parts(folder: Path, schema: dict[str, str]) -> pl.DataFrame:
    """All rows of the table in ``folder``, in write order; unreadable parts are skipped with a
    :class:`RunStoreWarning`. A part deleted by a concurrent compaction triggers a re-scan that
    reuses the parts already read.
    """
    import polars as pl

    read: dict[Path, pl.DataFrame | None] = {}
    for attempt in range(1, _READ_ATTEMPTS + 1):
        live = live_parts(scan_parts(folder))
        try:
            for p in reversed(live):  # newest first: those are the ones a compaction deletes
                if p.path not in read:
                    read[p.path] = _read_part(p.path, schema, attempt == _READ_ATTEMPTS)
            break
        except FileNotFoundError:
            continue
    frames = [f for p in live if (f := read[p.path]) is not None]
    return pl.concat(frames, how="vertical") if frames else empty_frame(schema)


def _read_part(path: Path, schema: dict[str, str], last_try: bool = True
               ) -> pl.DataFrame | None:
    import polars as pl

    try:
        data = path.read_bytes()
        if not (data.startswith(_MAGIC) and data.endswith(_MAGIC)):
            raise ValueError("truncated or not an Arrow IPC file")
        frame = pl.read_ipc(io.BytesIO(data))
        return frame.select(pl.col(n).cast(t) for n, t in _polars_schema(schema).items())
    except FileNotFoundError:
        if not last_try:
            raise  # deleted by a compaction: the caller re-scans
        warnings.warn(f"skipping part {path}: it vanished while being read", RunStoreWarning,
                      stacklevel=4)
        return None
    except Exception as exc:  # noqa: BLE001 - a bad file must never break a reader
        warnings.warn(f"skipping unreadable part {path} ({exc}); the other parts are read",
                      RunStoreWarning, stacklevel=4)
        return None


def compact(folder: Path, schema: dict[str, str], min_parts: int = 2, *,
            everything: bool = False) -> Path | None:
    """Merge the single parts written after the last range file (or, with ``everything``,
    all parts) into one range file, then delete the files it covers.

    Does nothing when fewer than ``min_parts`` files would merge. Only the run's writer calls
    this. Returns the range file written, or None.
    """
    parts = live_parts(scan_parts(folder))
    if not everything:
        last_range = max((p.last for p in parts if p.is_range), default=0)
        parts = [p for p in parts if not p.is_range and p.first > last_range]
    if len(parts) < max(min_parts, 1):
        return None
    import polars as pl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunStoreWarning)  # an unreadable part stays unreadable
        frames = [f for p in parts if (f := _read_part(p.path, schema)) is not None]
    merged = pl.concat(frames, how="vertical") if frames else empty_frame(schema)
    first, last = parts[0].first, max(p.last for p in parts)
    target = _write_frame(Path(folder) / part_name(first, last), merged)
    for p in scan_parts(folder):
        if p.path != target and first <= p.first and p.last <= last:
            p.path.unlink(missing_ok=True)
    return target
