"""The widgets as front ends that cannot run here receive them (VS Code's notebook editor,
Google Colab): the display bundle and, for Colab, the switch that lets it draw third-party
widgets. JupyterLab 4, Notebook 7 and static HTML exports are driven in a real browser by the
``*_ui.py`` tests and tests/test_notebook_export.py.
"""

from __future__ import annotations

import logging
import re
import sys
import types

import pytest

import llmlab
from llmlab import _display
from llmlab.attention import inspect
from llmlab.widgets import GenerateWidget, ModelBuilder, RunHistory
from llmlab.widgets.snapshot import SNAPSHOT_CLASS

VIEW = "application/vnd.jupyter.widget-view+json"
TEXT = "the animal didn't cross the street because it was too tired"


@pytest.fixture
def colab(monkeypatch):
    """A stand-in ``google.colab`` module whose switch counts its calls."""
    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    module = types.ModuleType("google.colab")
    module.output = output
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(_display, "_PREPARED", [])
    return calls


def test_colab_gets_its_custom_widget_manager_once(colab):
    for widget in (ModelBuilder(preset="baby-char"), ModelBuilder(preset="baby-char")):
        widget._ipython_display_()
    assert colab == [1]


def test_other_front_ends_need_no_switch(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(_display, "_PREPARED", [])
    assert _display.prepare_front_end() is None


def test_a_colab_without_the_switch_says_what_to_run(colab, caplog):
    def missing():
        raise AttributeError("enable_custom_widget_manager")

    sys.modules["google.colab"].output.enable_custom_widget_manager = missing
    with caplog.at_level(logging.WARNING, logger="llmlab._display"):
        assert _display.prepare_front_end() is None
    assert "output.enable_custom_widget_manager()" in caplog.text


def bundle(widget) -> dict:
    data = widget._repr_mimebundle_()
    return data[0] if isinstance(data, tuple) else data


def test_every_bundle_carries_a_widget_view_and_its_static_picture(tmp_path):
    """What VS Code (ipywidgets 8 protocol) or a front end without widgets picks from."""
    tok = llmlab.CharTokenizer.train(TEXT)
    builder = ModelBuilder(preset="baby-char")
    builder.tokenizer = tok
    builder.fields["vocab_size"].value = tok.vocab_size
    builder.build()
    model = llmlab.build_model(llmlab.ModelConfig(family="gpt", n_layer=2, n_head=4, d_model=32,
                                                  context_length=80, vocab_size=tok.vocab_size))
    widgets = [builder, GenerateWidget(builder), RunHistory(tmp_path / "runs"),
               inspect(model, tok, TEXT).show()]
    for widget in widgets:
        data = bundle(widget)
        view = data[VIEW]
        assert view["version_major"] == 2 and view["model_id"] == widget.model_id
        assert SNAPSHOT_CLASS in data.get("text/html", "") or data.get("image/png"), widget
        assert data["text/plain"]


def test_the_inspector_module_loads_nothing_from_the_network():
    """anywidget front ends (VS Code, Colab, JupyterLab) get the inspector's ES module inline in
    the widget state; it imports no URL, so it draws offline wherever anywidget runs."""
    tok = llmlab.CharTokenizer.train(TEXT)
    model = llmlab.build_model(llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16,
                                                  context_length=80, vocab_size=tok.vocab_size))
    esm = inspect(model, tok, TEXT).show().get_state()["_esm"]
    assert len(esm) > 10_000
    assert not re.search(r"""\bimport\s*(\(|[^;]*?\bfrom)\s*['"`](https?:)?//""", esm)
    assert not re.search(r"""\bimport\s*\(\s*['"`]https?:""", esm)
    assert not re.search(r"(?<![.\w])fetch\(|XMLHttpRequest", esm)  # the global fetch, not a method
