"""The package's public surface: every advertised name resolves, imports stay lazy."""

import subprocess
import sys

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
