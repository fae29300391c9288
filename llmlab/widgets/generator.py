"""``GenerateWidget``: a prompt, sampling controls and streamed, probability-coloured output.

Each token is shaded by the probability the model gave it (green likely, red unlikely) and
its hover text lists the most likely alternatives there. The Generate button runs
``llmlab.generate(model, tokenizer, prompt, stream="events", ...)`` in a background thread,
so Stop stays clickable; the output is redrawn a few times a second at most.

>>> w = GenerateWidget(builder)                       # any model source      # doctest: +SKIP
>>> w.prompt.value = "ROMEO:"                                                 # doctest: +SKIP
>>> w.generate().text                                 # the same, in this thread  # doctest: +SKIP
"""

from __future__ import annotations

import html
import math
import re
import threading
from typing import Any

import ipywidgets as widgets

from llmlab.errors import InputError
from llmlab.widgets.snapshot import Snapshot, snapshot_html, text_html
from llmlab.widgets.sources import resolve_model
from llmlab.widgets.status import StatusLine
from llmlab.widgets.throttle import Throttle

#: alternatives listed in each token's hover text
ALTERNATIVES = 5


class GenerateWidget(Snapshot, widgets.VBox):
    """Generate from a model source (a ModelBuilder, a TrainerWidget, ``(model, tokenizer)``).

    The source is resolved on every Generate, so the widget always uses its current model.
    ``.events`` holds the :class:`~llmlab.TokenEvent` s of the last generation, ``.text`` its
    text and ``.result`` its :class:`~llmlab.Generation` (``finish_reason="stopped"`` when
    Stop ended it early).
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.events: list[Any] = []
        self.result: Any = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._render_throttle = Throttle(self._render)
        self.prompt = widgets.Textarea(placeholder="type a prompt",
                                       layout=widgets.Layout(width="100%", height="60px"))
        wide = {"description_width": "130px"}
        self.max_new_tokens = widgets.BoundedIntText(100, min=1, max=100_000, style=wide,
                                                     description="max new tokens")
        self.temperature = widgets.BoundedFloatText(0.8, min=0.0, max=100.0, step=0.1,
                                                    style=wide, description="temperature",
                                                    tooltip="0 = greedy")
        self.top_k = widgets.BoundedIntText(0, min=0, max=10_000_000, style=wide,
                                            description="top-k", tooltip="0 = off")
        self.top_p = widgets.BoundedFloatText(1.0, min=0.0, max=1.0, step=0.05, style=wide,
                                              description="top-p", tooltip="1 = off")
        self.repetition_penalty = widgets.BoundedFloatText(
            1.0, min=0.0, max=100.0, step=0.1, style=wide, description="repetition penalty",
            tooltip="1 = off")
        self.seed = widgets.Text("", placeholder="random", style=wide, description="seed")
        self.slide = widgets.Checkbox(True, description="slide past the context", indent=False,
                                      tooltip="keep generating from the last tokens once the "
                                      "context is full (on_overflow='slide')")
        self.generate_button = widgets.Button(description="Generate", button_style="primary",
                                              icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.output = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.status = StatusLine()
        self.generate_button.on_click(self._on_generate)
        self.stop_button.on_click(lambda _button: self.stop())
        grid = widgets.GridBox(
            [self.max_new_tokens, self.temperature, self.top_k, self.top_p,
             self.repetition_penalty, self.seed, self.slide],
            layout=widgets.Layout(grid_template_columns="repeat(3, minmax(220px, 1fr))"))
        super().__init__(children=[self.prompt, grid,
                                   widgets.HBox([self.generate_button, self.stop_button]),
                                   self.output, self.status])
        self.add_class("llmlab-generate")

    # ------------------------------------------------------------------ public API
    def options(self) -> dict[str, Any]:
        """The sampling controls as keyword arguments of :func:`llmlab.generate`."""
        seed_text = self.seed.value.strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise ValueError(f"seed {seed_text!r} is not a whole number; type one, or leave "
                             "the box empty for a random seed") from None
        return dict(max_new_tokens=self.max_new_tokens.value,
                    temperature=self.temperature.value, top_k=self.top_k.value or None,
                    top_p=self.top_p.value, repetition_penalty=self.repetition_penalty.value,
                    seed=seed, on_overflow="slide" if self.slide.value else "error")

    def generate(self) -> Any:
        """Generate from the prompt in this thread, streaming into the output; the Generation.

        ``llmlab.generate(model, tok, prompt, stream="events", top_alternatives=5,
        **widget.options())``; when :meth:`stop` ended it early, the Generation holds the
        tokens so far and ``finish_reason="stopped"``.
        """
        from llmlab.generation import generate

        model, tokenizer = resolve_model(self.source)
        stream = generate(model, tokenizer, self.prompt.value, stream="events",
                          return_logprobs=True, top_alternatives=ALTERNATIVES, **self.options())
        self.events, self.result, self._stop_requested = [], None, False
        for event in stream:
            self.events.append(event)
            self._render_throttle()
            if self._stop_requested:
                stream.close()
                break
        self.result = stream.result
        self._render()
        self.status.show(self._summary(self.result), "ok")
        self.refresh_snapshot()
        return self.result

    def stop(self) -> None:
        """Stop the running generation after its current token (the text so far stays)."""
        self._stop_requested = True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a generation started by the button; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    @property
    def text(self) -> str:
        """The text generated so far (the stop token's text excluded)."""
        return "".join(event.text for event in self.events)

    # ------------------------------------------------------------------ the buttons
    def _on_generate(self, _button: Any = None) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.status.error("a generation is already running; press Stop first")
            return
        self.status.show("generating...")
        self.generate_button.disabled, self.stop_button.disabled = True, False
        self._thread = threading.Thread(target=self._generate_reporting, daemon=True,
                                        name="llmlab-generate")
        self._thread.start()

    def _generate_reporting(self) -> None:
        try:
            with self.status.reporting("generating"):
                try:
                    self.generate()
                except InputError as err:
                    raise InputError(in_widget_terms(str(err))) from None
        finally:
            self.generate_button.disabled, self.stop_button.disabled = False, True

    def _summary(self, result: Any) -> str:
        if result.finish_reason == "stopped":
            return f"stopped after {len(self.events)} tokens"
        return f"{len(self.events)} tokens, finished by {result.finish_reason}"

    # ------------------------------------------------------------------ drawing
    def _render(self) -> None:
        spans = "".join(token_span(event) for event in list(self.events))
        prompt = html.escape(self.prompt.value)
        self.output.value = (
            '<div class="llmlab-generation" style="white-space:pre-wrap;font-family:'
            'var(--jp-code-font-family, monospace);line-height:1.5">'
            f'<span style="opacity:0.6">{prompt}</span>{spans}</div>')

    def static_html(self) -> str:
        """The prompt and the shaded text of the last generation, with its status line."""
        body = self.output.value if self.events else text_html(
            f"prompt: {self.prompt.value}" if self.prompt.value else "nothing generated yet")
        try:
            options = ", ".join(f"{k}={v}" for k, v in self.options().items() if v is not None)
        except ValueError:
            options = ""
        return snapshot_html("generate", body, text_html(options, kind="options"),
                             text_html(self.status.message, kind="status"),
                             title="GenerateWidget")

    def __repr__(self) -> str:
        if not self.events:
            return "GenerateWidget (nothing generated yet)"
        return f"GenerateWidget: {self.prompt.value + self.text!r}"


#: The library's advice in its error messages, and what it is in this widget.
_WIDGET_TERMS = (
    (re.compile(r"[Pp]ass max_new_tokens=(\d+) or less"), r"set 'max new tokens' to \1 or less"),
    (re.compile(r"pass on_overflow='slide'"), "tick 'slide past the context'"),
    (re.compile(r"pass at least one token of text \(e\.g\. '\\n' for a character model\)"),
     "type a prompt (a newline will do for a character model)"),
    (re.compile(r"max_new_tokens=(\d+)"), r"max new tokens \1"),
)


def in_widget_terms(message: str) -> str:
    """A generation error with its advice in terms of this widget's controls.

    >>> in_widget_terms("Pass max_new_tokens=14 or less, or pass on_overflow='slide'.")
    "set 'max new tokens' to 14 or less, or tick 'slide past the context'."
    """
    for pattern, words in _WIDGET_TERMS:
        message = pattern.sub(words, message)
    return message


def token_span(event: Any) -> str:
    """One token as an HTML span: shaded by its probability, alternatives in the hover text.

    >>> from llmlab.generation import Alternative, TokenEvent
    >>> e = TokenEvent(0, 0, 7, "<b>", "<b>", logprob=0.0,
    ...                alternatives=[Alternative("<b>", 7, 0.0)])
    >>> token_span(e)[:54]
    '<span style="background:hsla(120, 70%, 50%, 0.35)" tit'
    """
    if not event.text:
        return ""  # an unfinished character: its text arrives with a later token
    p = math.exp(event.logprob) if event.logprob is not None else None
    lines = [f"{event.token!r}: p = {p:.3f}" if p is not None else repr(event.token)]
    lines += [f"  {alt.token!r} {math.exp(alt.logprob):.3f}"
              for alt in event.alternatives or []]
    hue = 120 * p if p is not None else 0
    alpha = 0.35 if p is not None else 0.0
    return (f'<span style="background:hsla({hue:.0f}, 70%, 50%, {alpha})" '
            f'title="{html.escape(chr(10).join(lines), quote=True)}">'
            f'{html.escape(event.text)}</span>')
