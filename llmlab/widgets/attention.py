"""``AttentionWidget``: llmlab's attention inspector for a source's current model, embeddable.

A text box and an Inspect button: Inspect runs ``llmlab.inspect(model, tokenizer, text)``
and shows ``capture.show()`` (the :class:`~llmlab.attention.AttentionInspector`) inside the
widget, so it works alone and as a tab of ``Lab``.

>>> w = AttentionWidget(trainer, text="The cat sat on the mat")   # doctest: +SKIP
>>> w.inspect_button.click(); w.capture                           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from llmlab.widgets.snapshot import Snapshot, png_img, snapshot_html, text_html
from llmlab.widgets.sources import resolve_model
from llmlab.widgets.status import StatusLine


class AttentionWidget(Snapshot, widgets.VBox):
    """Inspect the attention of a model source (ModelBuilder, TrainerWidget, (model, tok)).

    The source is resolved on every Inspect, so the inspector shows the model as it is now
    (e.g. after more training). ``.capture`` is the last :class:`~llmlab.Capture` and
    ``.inspector`` the widget showing it.
    """

    def __init__(self, source: Any, text: str | None = None) -> None:
        self.source = source
        self.capture: Any = None
        self.inspector: Any = None
        self.text = widgets.Textarea(text or "", placeholder="text to inspect",
                                     layout=widgets.Layout(width="100%", height="60px"))
        self.target = widgets.Text(
            "", placeholder="decoder text (seq2seq) or second segment (bert); optional",
            layout=widgets.Layout(width="100%"))
        self.max_tokens = widgets.BoundedIntText(
            0, min=0, max=1_000_000, description="max tokens",
            tooltip="keep at most this many tokens (0 = the whole text, up to the context)")
        self.inspect_button = widgets.Button(description="Inspect", button_style="primary",
                                             icon="eye")
        self.view = widgets.Box(layout=widgets.Layout(width="100%"))
        self.status = StatusLine()
        self.inspect_button.on_click(self._on_inspect)
        super().__init__(children=[self.text, self.target,
                                   widgets.HBox([self.max_tokens, self.inspect_button]),
                                   self.view, self.status])
        self.add_class("llmlab-attention")

    def inspect(self) -> Any:
        """Capture the text's attention and show it: ``llmlab.inspect(model, tok, text,
        target_text, max_tokens=...).show()``.

        Returns the :class:`~llmlab.Capture`.
        """
        from llmlab.attention import inspect

        text = self.text.value
        if not text.strip():
            raise ValueError("there is no text to inspect; type one in the box")
        model, tokenizer = resolve_model(self.source)
        capture = inspect(model, tokenizer, text, self.target.value or None,
                          max_tokens=self.max_tokens.value or None)
        inspector = capture.show()  # FrontendNotBuiltError (with the fix) when not built
        self.capture, self.inspector = capture, inspector
        self.view.children = (inspector,)
        self.refresh_snapshot()
        return capture

    def static_html(self) -> str:
        """The text and the inspector's static heatmap (its current kind, layer and head)."""
        png = self.inspector.static_png() if self.inspector is not None else None
        picture = png_img(png, "attention heatmap") if png is not None else ""
        return snapshot_html("attention", text_html(self.text.value, kind="text"), picture,
                             text_html(self.status.message, kind="status"),
                             title="AttentionWidget")

    def _on_inspect(self, _button: Any = None) -> None:
        with self.status.reporting("inspecting"):
            capture = self.inspect()
            sizes = " + ".join(str(len(t)) for t in capture.tokens.values())
            self.status.show(f"{sizes} tokens, {len(capture.heads)} heads per layer", "ok")

    def __repr__(self) -> str:
        if self.capture is None:
            return "AttentionWidget (nothing inspected yet)"
        return f"AttentionWidget: {self.capture!r}"
