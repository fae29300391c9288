"""The installed package registers both halves of the Jupyter integration.

Runs the same commands a user would (`jupyter labextension list`,
`jupyter server extension list`) with this interpreter's environment and
checks that llmlab is listed as enabled and OK in both.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_BUILT = (
    "The llmlab JupyterLab extension is not installed: no labextensions/llmlab/package.json "
    "in {paths}. This happens after a Python-only install (HATCH_JUPYTER_BUILDER_SKIP_NPM=1 or "
    "SKIP_JUPYTER_BUILDER=1). Reinstall with Node.js (>=18) and npm on PATH: `pip install .`"
)


def run_jupyter(*args: str, cwd: Path) -> str:
    """Run `jupyter <args>` from this Python environment; return stdout+stderr without colour."""
    env = dict(os.environ)
    # `python -m jupyter` finds subcommands on PATH: make this environment's come first
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    # run outside the source tree so the installed llmlab is the one imported
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args],
        capture_output=True,
        check=False,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"`jupyter {' '.join(args)}` failed:\n{output}"
    return output


def test_labextension_is_built_and_installed(tmp_path: Path) -> None:
    paths = [Path(p) / "llmlab" for p in jupyter_path("labextensions")]
    if not any((p / "package.json").is_file() for p in paths):
        pytest.fail(NOT_BUILT.format(paths=[str(p) for p in paths]))
    output = run_jupyter("labextension", "list", cwd=tmp_path)
    assert re.search(r"^\s*llmlab v\S+\s+enabled\s+OK\b", output, re.MULTILINE), output


def test_server_extension_is_enabled_and_valid(tmp_path: Path) -> None:
    output = run_jupyter("server", "extension", "list", cwd=tmp_path)
    assert re.search(r"^\s*llmlab\s+enabled\s*$", output, re.MULTILINE), output
    assert re.search(r"^\s*llmlab\s+\S*\s*OK\s*$", output, re.MULTILINE), output
