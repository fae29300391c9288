"""Where the built JavaScript lives (``llmlab/attention/static/``) and the error when it is missing.

The files are built from ``labextension/src/inspector/`` by ``npm run build:widget`` (part of
``npm run build:prod``, which ``pip install .`` runs through hatch-jupyter-builder), and are
not in git.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from llmlab.errors import FrontendNotBuiltError

STATIC = Path(__file__).with_name("static")


def static_text(relative: str) -> str:
    """The text of a built file under ``static/``, or :class:`FrontendNotBuiltError` saying how
    to build it."""
    path = STATIC / relative
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FrontendNotBuiltError(
            f"llmlab's attention front end is not built ({path} is missing): this install "
            "skipped the JavaScript build (HATCH_JUPYTER_BUILDER_SKIP_NPM=1 or "
            "SKIP_JUPYTER_BUILDER=1, or an editable install). Reinstall with Node.js >= 18 and "
            "npm on PATH (`pip install .`), or build it in place: `cd labextension && npm install "
            "&& npm run build:widget`. Without it, cap.plot() still draws a static heatmap."
        ) from None


@lru_cache(maxsize=1)
def vendor_versions() -> dict[str, dict[str, str]]:
    """``{"d3": {"version": ..., "license": ..., "file": ...}, "jquery": ..., "requirejs": ...}``."""
    return json.loads(static_text("vendor/versions.json"))
