"""The lab extension's TypeScript unit tests (vitest, ``npm test`` in labextension/).

They need ``labextension/node_modules``. ``pip install .`` creates it: hatch-jupyter-builder's
``npm_builder`` runs ``npm install`` and then ``npm run build:prod`` in labextension/ whenever
the built extension is missing or older than its sources, as on a fresh checkout in CI. When
it is absent this test fails (it does not skip) and says what to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"


def test_typescript_unit_tests_pass() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("The TypeScript unit tests need Node.js >= 18 and npm on PATH.")
    if not (LABEXTENSION / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail(f"{LABEXTENSION / 'node_modules'} is missing or lacks vitest: run "
                    f"`npm install` in {LABEXTENSION} (pip install . does it when it builds "
                    "the extension).")
    env = {**os.environ, "CI": "1", "NO_COLOR": "1"}  # CI=1: run once, no watch mode
    result = subprocess.run([npm, "test"], cwd=LABEXTENSION, env=env, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"npm test failed:\n{output}"
    assert " passed" in output and " failed" not in output, output
