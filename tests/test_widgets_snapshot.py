"""Every widget's display bundle carries its static picture beside the widget view, under a
display id that ``refresh_snapshot`` rewrites (IPython's display publisher recorded)."""

from __future__ import annotations

import base64

import pytest
import torch

import llmlab
from llmlab._display import Snapshot
from llmlab.widgets import (
    CalibrationWidget,
    GenerateWidget,
    Lab,
    LineChart,
    ModelBuilder,
    RunHistory,
)
from llmlab.widgets.snapshot import SNAPSHOT_CLASS

VIEW = "application/vnd.jupyter.widget-view+json"
TEXT = "To be, or not to be, that is the question. " * 40


@pytest.fixture()
def published(monkeypatch):
    """IPython's display calls, recorded as (kind, data, display id) in a fresh shell."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    calls = []

    def publish(data, metadata=None, source=None, *, transient=None, update=False, **_):
        calls.append(("update" if update else "display", data, (transient or {})["display_id"]))

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    return calls


def html_of(widget) -> str:
    data = widget._repr_mimebundle_()
    data = data[0] if isinstance(data, tuple) else data
    assert VIEW in data
    return data["text/html"]


def test_builder_bundle_has_config_estimates_and_diagram():
    builder = ModelBuilder(preset="baby-char")
    page = html_of(builder)
    assert SNAPSHOT_CLASS in page and "<svg" in page
    assert f"{llmlab.ModelConfig.preset('baby-char').estimate(batch_size=12).params:,}" in page
    builder.fields["n_head"].value = 3                          # does not divide width 128
    assert "invalid config" in html_of(builder)


def test_display_then_refresh_rewrites_the_same_output(published):
    from IPython.display import display

    builder = ModelBuilder(preset="baby-char")
    display(builder)
    display(builder)                                            # shown twice: two outputs
    builder.build()
    shown = [c for c in published if c[0] == "display"]
    updates = [c for c in published if c[0] == "update"]
    assert len(shown) == 2 and VIEW in shown[0][1]
    assert {c[2] for c in updates} == {c[2] for c in shown}     # both rewritten
    assert all("built (builder.model)" in c[1]["text/html"] for c in updates)
    assert all(c[1][VIEW] == shown[0][1][VIEW] for c in updates)  # the same live widget


def test_not_displayed_widget_refreshes_nothing(published):
    assert ModelBuilder().refresh_snapshot() is False and not published


def test_generator_picture_is_the_shaded_text(published):
    from IPython.display import display

    tok = llmlab.CharTokenizer.train(TEXT)
    cfg = llmlab.ModelConfig.preset("baby-char", vocab_size=tok.vocab_size, n_layer=1)
    widget = GenerateWidget((llmlab.build_model(cfg, seed=0), tok))
    display(widget)
    widget.prompt.value = "To be"
    widget.max_new_tokens.value = 8
    result = widget.generate()
    page = published[-1][1]["text/html"]
    assert published[-1][0] == "update"
    assert "hsla(" in page and "8 tokens" in page
    import html

    spans = [f"{html.escape(e.text)}</span>" for e in widget.events if e.text]
    assert len(spans) == len(result.tokens) and all(span in page for span in spans)


def test_chart_history_calibration_and_lab_pictures(tmp_path):
    chart = LineChart("loss")
    assert chart.static_png() is None
    chart.set_series("train/loss", list(range(10_000)), [1 / (i + 1) for i in range(10_000)])
    png = chart.static_png()
    data = chart._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == png and png[:4] == b"\x89PNG"

    history = RunHistory(tmp_path / "runs")
    assert "no runs in" in html_of(history)

    probs = torch.softmax(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)) * 3, -1)
    labels = torch.randint(0, 3, (200,), generator=torch.Generator().manual_seed(1))
    calibration = CalibrationWidget(probs.numpy(), labels.numpy())
    calibration.methods.value = ("none", "temperature")
    calibration.calibrate()
    page = html_of(calibration)
    assert "data:image/png;base64," in page and "smece" in page

    tok = llmlab.CharTokenizer.train(TEXT)
    data = llmlab.data.CausalLMData.from_text(TEXT, tok, seq_len=16)
    lab = Lab(data, run_dir=tmp_path / "runs")
    assert 'data-llmlab-widget="builder"' in html_of(lab)       # the active tab: Model
    lab.show("Runs")
    assert 'data-llmlab-widget="history"' in html_of(lab)


def test_lab_output_is_rewritten_when_a_tab_refreshes(published, tmp_path):
    from IPython.display import display

    tok = llmlab.CharTokenizer.train(TEXT)
    lab = Lab(llmlab.data.CausalLMData.from_text(TEXT, tok, seq_len=16), run_dir=tmp_path)
    display(lab)
    lab.builder.build()
    assert [c[2] for c in published if c[0] == "update"] == [published[0][2]]


def test_a_failing_picture_never_hides_the_widget(caplog):
    import ipywidgets as widgets

    class Broken(Snapshot, widgets.HTML):
        def static_html(self):
            raise RuntimeError("boom")

    data = Broken("x")._repr_mimebundle_()
    assert VIEW in data and "text/html" not in data
    assert "no static picture for Broken" in caplog.text
