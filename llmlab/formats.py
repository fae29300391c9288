"""The header of every file format llmlab writes, and the one rule for reading its version.

Each saved format (checkpoint config, tokenizer, calibrator, attention snapshot, run
manifest) is a :class:`Format`: a name, the version this llmlab writes and the oldest it still
reads. Reading applies one rule everywhere: a file of a newer version is refused with
"upgrade llmlab"; one from ``oldest`` up to the current version is read; an older one is
refused with the format's own way to make it again. A version must be a whole number.

>>> fmt = Format("llmlab-example", version=2, oldest=1, what="an example", redo="save it again")
>>> fmt.header()
{'format': 'llmlab-example', 'format_version': 2}
>>> fmt.check({"format": "llmlab-example", "format_version": 1}, "x.json")
1
>>> fmt.check({"format": "llmlab-example", "format_version": 3}, "x.json")
Traceback (most recent call last):
...
llmlab.errors.LLMLabError: x.json is format 3 of an example, written by a newer llmlab (this one reads 1 to 2): upgrade llmlab (pip install -U llmlab).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmlab.errors import LLMLabError

__all__ = ["Format"]


@dataclass(frozen=True)
class Format:
    """One saved format: ``name`` (the ``format`` field; None where the version key alone
    marks the file), the ``version`` written, the ``oldest`` read, the version's key, what the
    file is (``what``, for messages) and how to make an unreadable old one again (``redo``).
    ``missing`` is the version a file without the key counts as (None: the key is required)."""

    name: str | None
    version: int
    oldest: int = 1
    what: str = "an llmlab file"
    redo: str = "save it again with this llmlab"
    version_key: str = "format_version"
    missing: int | None = None

    def header(self) -> dict[str, Any]:
        """The header fields a writer puts first in the file."""
        head = {} if self.name is None else {"format": self.name}
        return {**head, self.version_key: self.version}

    def check(self, data: Any, source: Any, error: type[Exception] = LLMLabError) -> int:
        """The version of ``data`` (a file's parsed header) if this llmlab reads it, else
        ``error`` naming ``source``, what is wrong and the fix."""
        if not isinstance(data, dict) or (self.name is not None
                                          and data.get("format") != self.name):
            named = f' (no "format": "{self.name}")' if self.name else ""
            raise error(f"{source} is not {self.what}{named}; {self.redo}.")
        version = data.get(self.version_key, self.missing)
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise error(f"{source} has {self.version_key}={version!r}; it must be a whole "
                        f"number ({self.version} for this llmlab). The file was edited or "
                        f"damaged: fix the value, or {self.redo}.")
        if version > self.version:
            raise error(f"{source} is format {version} of {self.what}, written by a newer "
                        f"llmlab (this one reads {self.oldest} to {self.version}): upgrade "
                        "llmlab (pip install -U llmlab).")
        if version < self.oldest:
            raise error(f"{source} is format {version} of {self.what}, older than this llmlab "
                        f"still reads (from {self.oldest}); {self.redo}.")
        return version
