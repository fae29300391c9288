"""Append-only tables stored as Arrow IPC part files: ``part-<seq>.<sum>.arrow`` per flush,
merged into ``part-<first>-<last>.<sum>.arrow`` by compaction. polars is imported inside the
functions.

``<sum>`` is the first 16 hex digits of the file's SHA-256: it lands with the file in one
rename, and readers check it before polars parses a byte, so a damaged part is skipped with a
warning instead of being misread (or crashing the parser). Parts without a sum were written by
llmlab before run format 2 and are read only when the run is older than that.

A range file covers every single part whose seq lies in its range; readers skip covered
singles, so the moment between writing a range and deleting its singles reads the same rows.

>>> import tempfile; folder = Path(tempfile.mkdtemp())
>>> write_part(folder, 1, [(1, "loss", 2.5, 0.0)], METRICS).name[:14]
'part-00000001.'
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

from llmlab._files import read_regular_bytes, sha256_hex, write_bytes_atomic
from llmlab.runs.layout import RunStoreWarning

if TYPE_CHECKING:
    import polars as pl

#: Column name -> polars dtype name of each table (names, so this module imports no polars).
METRICS = {"step": "Int64", "name": "String", "value": "Float64", "time": "Float64"}
SAMPLES = {"step": "Int64", "prompt": "String", "text": "String", "time": "Float64"}

_PART = re.compile(r"part-([0-9]{8,})(?:-([0-9]{8,}))?(?:\.([0-9a-f]{16}))?\.arrow", re.ASCII)
_MAGIC = b"ARROW1"
_READ_ATTEMPTS = 5
#: Hex digits of the SHA-256 a part's name carries.
SUM_DIGITS = 16


@dataclass(frozen=True)
class Part:
    """One part file holding seqs ``first..last``; ``is_range`` for a compacted file."""

    first: int
    last: int
    path: Path
    is_range: bool = False
    checksum: str | None = None


def part_name(first: int, last: int | None = None, checksum: str | None = None) -> str:
    """File name of a single part (``last`` None) or of a compacted range, with its checksum.

    >>> part_name(3), part_name(1, 128, "0123456789abcdef")
    ('part-00000003.arrow', 'part-00000001-00000128.0123456789abcdef.arrow')
    """
    seqs = f"{first:08d}" if last is None else f"{first:08d}-{last:08d}"
    return f"part-{seqs}.arrow" if checksum is None else f"part-{seqs}.{checksum}.arrow"


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
            parts.append(Part(first, last, Path(folder) / name, m.group(2) is not None,
                              m.group(3)))
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
    """Write ``rows`` (tuples in schema order) as ``part-<seq>.<sum>.arrow``, atomically."""
    import polars as pl

    frame = pl.DataFrame(rows, schema=_polars_schema(schema), orient="row")
    return _write_frame(Path(folder), seq, None, frame)


def _write_frame(folder: Path, first: int, last: int | None, frame: pl.DataFrame) -> Path:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    data = buffer.getvalue()
    path = folder / part_name(first, last, sha256_hex(data)[:SUM_DIGITS])
    write_bytes_atomic(path, data)
    return path


def read_parts(folder: Path, schema: dict[str, str], *, require_checksum: bool = False
               ) -> pl.DataFrame:
    """All rows of the table in ``folder``, in write order; unreadable parts (damaged, checksum
    mismatch, not a regular file, or without a checksum when ``require_checksum``) are skipped
    with a :class:`RunStoreWarning`. A part deleted by a concurrent compaction triggers a
    re-scan that reuses the parts already read.
    """
    import polars as pl

    read: dict[Path, pl.DataFrame | None] = {}
    for attempt in range(1, _READ_ATTEMPTS + 1):
        live = live_parts(scan_parts(folder))
        try:
            for p in reversed(live):  # newest first: those are the ones a compaction deletes
                if p.path not in read:
                    read[p.path] = _read_part(p, schema, attempt == _READ_ATTEMPTS,
                                              require_checksum)
            break
        except FileNotFoundError:
            continue
    frames = [f for p in live if (f := read[p.path]) is not None]
    return pl.concat(frames, how="vertical") if frames else empty_frame(schema)


def _read_part(part: Part, schema: dict[str, str], last_try: bool = True,
               require_checksum: bool = False) -> pl.DataFrame | None:
    path = part.path
    try:
        return _parse(_checked_bytes(part, require_checksum), schema)
    except FileNotFoundError:
        if not last_try:
            raise  # deleted by a compaction: the caller re-scans
        warnings.warn(f"skipping part {path}: it vanished while being read", RunStoreWarning,
                      stacklevel=4)
        return None
    except (Exception, _panic()) as exc:  # noqa: BLE001 - a bad file must never break a reader
        warnings.warn(f"skipping unreadable part {path} ({exc}); the other parts are read",
                      RunStoreWarning, stacklevel=4)
        return None


def _checked_bytes(part: Part, require_checksum: bool) -> bytes:
    """The part's bytes once they match the checksum in its name (ValueError when not)."""
    data = read_regular_bytes(part.path)
    if part.checksum is not None:
        actual = sha256_hex(data)[:SUM_DIGITS]
        if actual != part.checksum:
            raise ValueError(f"checksum mismatch: the name says {part.checksum}, the content "
                             f"hashes to {actual}; the file was damaged after it was written")
        return data
    if require_checksum:
        raise ValueError("it has no checksum in its name, which every part of a run of this "
                         "format has; it was not written by llmlab")
    if not (data.startswith(_MAGIC) and data.endswith(_MAGIC)):
        raise ValueError("truncated or not an Arrow IPC file")
    return data


def _parse(data: bytes, schema: dict[str, str]) -> pl.DataFrame:
    import polars as pl

    frame = pl.read_ipc(io.BytesIO(data))
    return frame.select(pl.col(n).cast(t) for n, t in _polars_schema(schema).items())


def _panic() -> type[BaseException]:
    """polars' PanicException: a BaseException, so ``except Exception`` misses it."""
    from polars.exceptions import PanicException

    return PanicException


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

    # A damaged part is reported (its rows are gone either way) and left out of the range.
    frames = [f for p in parts if (f := _read_part(p, schema)) is not None]
    merged = pl.concat(frames, how="vertical") if frames else empty_frame(schema)
    first, last = parts[0].first, max(p.last for p in parts)
    target = _write_frame(Path(folder), first, last, merged)
    for p in scan_parts(folder):
        if p.path != target and first <= p.first and p.last <= last:
            p.path.unlink(missing_ok=True)
    return target
