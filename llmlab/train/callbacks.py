"""Callbacks: hooks into training that widgets and users attach to a Trainer.

>>> class PrintEval(Callback):
...     def on_eval(self, trainer, step, metrics):
...         print(step, metrics["val/loss"])
"""

from __future__ import annotations

import time
from typing import Any


class Callback:
    """Subclass and override what you need; every hook does nothing by default."""

    def on_start(self, trainer: Any) -> None:
        """Before the first step (also after a resume)."""

    def on_step(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        """After each optimizer step; ``metrics`` has train/loss and lr."""

    def on_eval(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        """After each evaluation; ``metrics`` has val/loss and val/perplexity."""

    def on_checkpoint(self, trainer: Any, step: int, path: Any) -> None:
        """After a complete checkpoint was written to ``path``."""

    def on_end(self, trainer: Any, run: Any) -> None:
        """When training ends, whatever the reason (see ``run.status``)."""


class ProgressBar(Callback):
    """A tqdm bar (notebook or terminal) with loss, tokens/s and ETA.

    It redraws at most once per ``min_interval`` seconds whatever the step rate (tqdm's
    ``mininterval``; the postfix is only set between redraws), so a fast run stays far below
    Jupyter's IOPub message rate limit. ``file`` sends a terminal bar there instead of
    tqdm.auto's choice. In a notebook the bar's output carries its text too, rewritten when
    training ends (a display id), so a saved notebook or an HTML export shows the final bar.

    >>> import io
    >>> bar = ProgressBar(file=io.StringIO())
    """

    def __init__(self, min_interval: float = 0.25, *, file: Any = None):
        if not min_interval > 0:
            raise ValueError(f"min_interval must be a number of seconds > 0, got "
                             f"{min_interval!r}")
        self.min_interval, self.file = min_interval, file
        self._bar: Any = None
        self._shown: Any = None
        self._last = 0.0
        self._val: float | None = None

    def on_start(self, trainer: Any) -> None:
        if not trainer.accelerator.is_main_process:
            return
        options = dict(total=trainer.config.max_steps, initial=trainer.step, unit="step",
                       mininterval=self.min_interval, dynamic_ncols=True)
        if self.file is not None:
            from tqdm.std import tqdm

            self._bar = tqdm(file=self.file, **options)
        else:
            self._bar = _auto_bar(options)
        self._val = None
        if getattr(self._bar, "container", None) is not None:   # a notebook bar, not shown yet
            from llmlab._display import Displays

            self._shown = Displays()
            self._shown.show(_bar_bundle(self._bar))

    def on_step(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        if self._bar is None:
            return
        now = time.monotonic()
        if now - self._last >= self.min_interval:
            self._last = now
            post = {"loss": f"{metrics['train/loss']:.4f}"}
            if "tokens_per_s" in metrics:
                post["tok/s"] = f"{metrics['tokens_per_s']:.0f}"
            if self._val is not None:
                post["val"] = f"{self._val:.4f}"
            self._bar.set_postfix(post, refresh=False)
        self._bar.update(step - self._bar.n)

    def on_eval(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._val = metrics["val/loss"]

    def on_end(self, trainer: Any, run: Any) -> None:
        if self._bar is None:
            return
        self._bar.close()
        if self._shown is not None:
            self._shown.update(_bar_bundle(self._bar))
        self._bar = self._shown = None


def _auto_bar(options: dict[str, Any]) -> Any:
    """tqdm.auto's bar: the notebook one (not displayed yet: ProgressBar shows it) in Jupyter."""
    from tqdm.auto import tqdm

    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:   # no ipywidgets: tqdm.auto is the terminal bar
        notebook_tqdm = None
    if notebook_tqdm is not None and issubclass(tqdm, notebook_tqdm):
        return tqdm(display=False, **options)
    return tqdm(**options)


def _bar_bundle(bar: Any) -> dict[str, Any]:
    """A notebook bar's display bundle (its widget view) plus its text as HTML."""
    import html

    data = dict(bar.container._repr_mimebundle_())
    data["text/html"] = (f'<pre class="llmlab-progress" style="margin:0">'
                         f"{html.escape(str(bar))}</pre>")
    return data
