"""The training progress bar redraws a few times a second whatever the step rate (Jupyter drops
output past its IOPub rate limit): a 6,000-step run of a tiny model, its redraws counted
where they go (the terminal bar's file, the notebook bar's widget updates)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

import llmlab
from llmlab import ModelConfig, Trainer
from llmlab.data import CausalLMData
from llmlab.train import ProgressBar

TEXT = (Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
        ).read_text()[:20_000]
STEPS = 6_000
RATE = 4          # redraws a second at most, with ProgressBar's default 0.25 s
SLACK = 3         # the first draw, the closing draw and one at a boundary


@pytest.fixture(scope="module")
def data():
    tok = llmlab.CharTokenizer.train(TEXT)
    return CausalLMData.from_text(TEXT, tok, seq_len=8)


def _fit(data, tmp_path, bars: list[ProgressBar]) -> float:
    cfg = ModelConfig(family="gpt", vocab_size=data.tokenizer.vocab_size, context_length=8,
                      n_layer=1, n_head=1, d_model=8, dropout=0.0)
    trainer = Trainer(llmlab.build_model(cfg, seed=0), data, max_steps=STEPS, batch_size=1,
                      eval_interval=STEPS, eval_batches=1, run_dir=tmp_path / "runs",
                      callbacks=bars, progress=False)
    started = time.monotonic()
    run = trainer.fit()
    assert run.status == "finished" and trainer.step == STEPS
    return time.monotonic() - started


class CountingFile(io.StringIO):
    """A terminal: every redraw of a tqdm bar starts with a carriage return."""

    def __init__(self) -> None:
        super().__init__()
        self.redraws = 0

    def write(self, text: str) -> int:
        self.redraws += text.count("\r")
        return super().write(text)


def test_bars_redraw_a_few_times_a_second_in_a_6000_step_run(data, tmp_path, monkeypatch):
    """One run with both bars: a terminal bar on a counting file, and the notebook bar that
    tqdm.auto picks in Jupyter, its widget redraws counted."""
    import tqdm.auto
    from tqdm.notebook import tqdm as notebook_tqdm

    redraws: list[int] = []

    class CountedBar(notebook_tqdm):
        def display(self, *args, **kwargs):
            redraws.append(self.n)
            return super().display(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", CountedBar)
    out, notebook = CountingFile(), ProgressBar()
    seconds = _fit(data, tmp_path, [ProgressBar(file=out), notebook])
    assert STEPS / seconds > 10 * RATE, "the run must step much faster than the bars redraw"
    assert 2 <= out.redraws <= seconds * RATE + SLACK, (out.redraws, seconds)
    final = out.getvalue().split("\r")[-1]
    assert f"{STEPS}/{STEPS}" in final and "loss=" in final   # the last redraw is complete
    assert 2 <= len(redraws) <= seconds * RATE + SLACK, (len(redraws), seconds)
    assert redraws[-1] == STEPS and notebook._bar is None     # drawn complete, then closed


def test_progress_bar_refuses_a_bad_interval():
    with pytest.raises(ValueError, match="min_interval"):
        ProgressBar(min_interval=0)
