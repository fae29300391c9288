"""Widget static pictures: what a widget's display bundle costs with its picture.

Cases (one JSON line each on stdout; see benchmarks/README.md):

- ``builder_snapshot_budget``: ``ModelBuilder._repr_mimebundle_()`` (the widget view plus the
  config table, estimates and SVG diagram), ms, vs the 50 ms budget;
- ``trainer_snapshot_10000_budget``: the same for a ``TrainerWidget`` whose chart holds
  10,000 logged training steps and 50 evaluations (its curves drawn to PNG by matplotlib),
  vs the 300 ms budget;
- ``trainer_snapshot_bytes_budget``: the size of that bundle as a saved notebook output
  (JSON), in KB, vs the 300 KB budget.

``python benchmarks/snapshot.py [--quick]``
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, environment, iterations, log, parse_args, time_call  # noqa: E402

BENCH = "snapshot"
TEXT = "To be, or not to be, that is the question. " * 200


def trainer_with_steps(steps: int):
    """A TrainerWidget whose chart and numbers show ``steps`` logged steps (no training run)."""
    import llmlab
    from llmlab.widgets import ModelBuilder, TrainerWidget

    tok = llmlab.CharTokenizer.train(TEXT)
    data = llmlab.data.CausalLMData.from_text(TEXT, tok, seq_len=16)
    widget = TrainerWidget(ModelBuilder(preset="baby-char"), data, max_steps=steps)
    for step in range(1, steps + 1):
        widget._view.on_step(_FakeTrainer(steps), step, {"train/loss": 4 * math.exp(-step / 3000),
                                                         "lr": 1e-3, "tokens_per_s": 5e4})
        if step % (steps // 50) == 0:
            widget._view.on_eval(_FakeTrainer(steps), step, {"val/loss": 4.1 * math.exp(-step / 3000)})
    widget._view.flush()
    return widget


class _FakeTrainer:
    """What the widget's training callback reads of a trainer."""

    run = None

    def __init__(self, steps: int):
        self.config = type("Config", (), {"max_steps": steps})()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    iters, warmup = iterations(args, quick=5, full=20)
    log(f"environment: {environment(args.device)}")
    from llmlab.widgets import ModelBuilder

    builder = ModelBuilder(preset="baby-char")
    trainer = trainer_with_steps(10_000)
    for name, widget, budget in (("builder_snapshot_budget", builder, 50.0),
                                 ("trainer_snapshot_10000_budget", trainer, 300.0)):
        for _ in range(warmup):
            widget._repr_mimebundle_()
        samples = [time_call(widget._repr_mimebundle_) for _ in range(iters)]
        log(f"{name}: median {statistics.median(samples):.1f} ms, min {min(samples):.1f} ms")
        emit(BENCH, name, "ms", statistics.median(samples), budget, f"{budget:.0f} ms budget",
             higher_is_better=False, target=1.0)
    output = {"output_type": "display_data", "metadata": {}, "data": trainer._repr_mimebundle_()}
    size = len(json.dumps(output)) / 1e3
    emit(BENCH, "trainer_snapshot_bytes_budget", "KB", size, 300.0, "300 KB budget",
         higher_is_better=False, target=1.0)


if __name__ == "__main__":
    main()
