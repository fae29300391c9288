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
    """A tqdm bar (notebook or terminal) with loss, tokens/s and ETA, redrawn a few times a second."""

    def __init__(self, min_interval: float = 0.25):
        self.min_interval = min_interval
        self._bar = None
        self._last = 0.0

    def on_start(self, trainer: Any) -> None:
        if not trainer.accelerator.is_main_process:
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=trainer.config.max_steps, initial=trainer.step, unit="step",
                         mininterval=self.min_interval, dynamic_ncols=True)
        self._val = None

    def on_step(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        now = time.monotonic()
        if now - self._last >= self.min_interval:
            self._last = now
            post = {"loss": f"{metrics['train/loss']:.4f}"}
            if "tokens_per_s" in metrics:
                post["tok/s"] = f"{metrics['tokens_per_s']:.0f}"
            if self._val is not None:
                post["val"] = f"{self._val:.4f}"
            self._bar.set_postfix(post, refresh=False)

    def on_eval(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._val = metrics["val/loss"]

    def on_end(self, trainer: Any, run: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
