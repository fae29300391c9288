"""The package's public surface: every advertised name resolves, imports stay lazy, the code
keeps its lint rules."""

import subprocess
import sys
from pathlib import Path

import pytest

import llmlab


@pytest.mark.parametrize("name", llmlab.__all__)
def test_every_public_name_resolves(name):
    assert getattr(llmlab, name) is not None


def test_widgets_advertise_what_they_define():
    from llmlab import widgets

    for name in widgets.__all__:
        assert getattr(widgets, name) is not None


def test_import_does_not_load_torch_or_widgets():
    code = ("import sys, llmlab; "
            "print(sorted(m for m in ('torch', 'ipywidgets', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_code_passes_the_linter():
    """The package, tests and benchmarks keep the rules of ``[tool.ruff]`` in pyproject.toml
    (imports sorted, no unused names, no loop variables left unused, ...)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format",
                           "concise", "llmlab", "tests", "benchmarks"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
