"""TrainerWidget.attach: a training that goes on without its view, followed from the run store
(issue 21 item 3) -- in another process, after that process dies (a kernel restart), resumed
from the widget; and the bad input: no such run, no store, a store that disappears, a widget
shown twice.

Tiny models; the "kernel" is a subprocess that trains with ``Trainer.fit`` and is killed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import llmlab
from llmlab.runs import RunNotFoundError, RunStore, RunStoreError
from llmlab.widgets.trainer import TrainerWidget

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEXT_CHARS = 20_000
SETTINGS = dict(max_steps=1_000_000, batch_size=4, eval_interval=50, eval_batches=1,
                checkpoint_interval=20, lr=3e-3)
KERNEL = textwrap.dedent("""
    import sys, llmlab
    text = open(sys.argv[1], encoding="utf-8").read()[:{chars}]
    tok = llmlab.CharTokenizer.train(text)
    data = llmlab.data.CausalLMData.from_text(text, tok, seq_len=16)
    cfg = llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16, context_length=16,
                             vocab_size=tok.vocab_size)
    llmlab.Trainer(llmlab.build_model(cfg, seed=0), data, run_dir=sys.argv[2], progress=False,
                   **{settings}).fit()
""").format(chars=TEXT_CHARS, settings=SETTINGS)


@pytest.fixture(scope="module")
def data():
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:TEXT_CHARS]
    return llmlab.data.CausalLMData.from_text(text, llmlab.CharTokenizer.train(text),
                                              seq_len=16)


def wait_for(condition, timeout=120.0, what="the training"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not get there in time"
        time.sleep(0.05)


def logged_steps(run) -> list[int]:
    return run.metrics.select("step", "train/loss").drop_nulls()["step"].to_list()


def test_attach_follows_another_process_and_says_when_its_kernel_dies(data, tmp_path):
    store = tmp_path / "runs"
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL,
                               str(SHARED_DATA / "tinyshakespeare.txt"), str(store)])
    try:
        wait_for(lambda: store.is_dir() and RunStore(store).runs()
                 and (RunStore(store).runs()[0].last_step or 0) >= 25, what="the kernel")
        w = TrainerWidget.attach(run_dir=store, interval=0.2)   # its newest running run
        run = RunStore(store).runs()[0]
        assert w.following and w.run == run and "following run" in w.status.message
        assert w.controls["max_steps"].value == SETTINGS["max_steps"]   # the run's settings
        first = w.loss_chart.points("train/loss")[0][-1]
        wait_for(lambda: w.loss_chart.points("train/loss")[0][-1] > first + 20)
        # the curve is the store's: every step logged so far, from step 1, no gap
        xs = w.loss_chart.points("train/loss")[0]
        assert xs == [s for s in logged_steps(run) if s <= xs[-1]] and xs[0] == 1
        assert f"step {xs[-1]:,}/" in w.stats.value and w.progress.value >= xs[-1]
        assert w.stop_button.disabled and w.start_button.disabled
        w.stop()                  # the call a button makes: refused on the status line
        assert w.status.kind == "error" and "trains in another kernel" in w.status.message
        w.start_button.click()
        assert "still training elsewhere; this widget only follows it" in w.status.message
        kernel.send_signal(signal.SIGKILL)                 # the kernel restarts mid-run
        kernel.wait(30)
    finally:
        if kernel.poll() is None:
            kernel.kill()
    wait_for(lambda: not w.following, what="the follower")
    assert run.status == "interrupted"
    assert "was interrupted after" in w.status.message
    assert f"(pid {kernel.pid} on" in w.status.message and "kernel restart" in w.status.message
    assert "TrainerWidget.attach(" in w.status.message      # what continues it
    assert "interrupted" in w.static_html()

    again = TrainerWidget.attach(run.id, run_dir=store, data=data)   # after reconnection
    assert not again.following and "was interrupted after" in again.status.message
    assert "Resume continues it from step-" in again.status.message
    assert not again.resume_button.disabled and again.start_button.disabled is False
    steps = run.last_step
    checkpoint = run.checkpoints()[-1][0]
    again.controls["max_steps"].value = checkpoint + 10
    again.resume_button.click()
    again.wait(120)
    assert run.status == "finished" and run.last_step == checkpoint + 10
    assert "finished run" in again.status.message and steps >= checkpoint


def test_attach_to_a_missing_run_or_store_says_what_to_do(tmp_path):
    with pytest.raises(RunStoreError, match="there is no run store at .* pass attach"):
        TrainerWidget.attach("20260101-000000-abcdef", run_dir=tmp_path / "nowhere")
    store = RunStore(tmp_path / "runs")
    done = store.create(name="done")
    done.log_metrics({"train/loss": 2.0}, step=1)
    done.finish()
    with pytest.raises(RunNotFoundError, match="no run '20260101-000000-abcdef' in"):
        TrainerWidget.attach("20260101-000000-abcdef", run_dir=store.path)
    with pytest.raises(RunNotFoundError, match="no run is training in .* llmlab.runs.list"):
        TrainerWidget.attach(run_dir=store.path)
    w = TrainerWidget.attach(done.id, run_dir=store.path)   # not running: shown as it ended
    assert not w.following and w.loss_chart.points("train/loss") == ([1], [2.0])
    assert w.status.message.startswith(f"run {done.id} is not running: it finished (1 steps")


def test_a_store_that_disappears_while_followed_is_said(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create(name="live", auto_flush_seconds=None)   # this process writes it
    run.log_metrics({"train/loss": 3.0}, step=1)
    run.flush()
    w = TrainerWidget.attach(run.id, run_dir=store.path, interval=0.05)
    assert w.following
    shutil.rmtree(store.path)
    wait_for(lambda: not w.following, what="the follower")
    assert w.status.kind == "error"
    assert "the run store at" in w.status.message and "is gone (moved or deleted?)" in (
        w.status.message)
    assert w.status.message.endswith("the view stops at step 1")


def test_a_widget_shown_twice_and_attached_again_is_one_training(data, tmp_path):
    cfg = llmlab.ModelConfig(family="gpt", n_layer=1, n_head=2, d_model=16, context_length=16,
                             vocab_size=data.tokenizer.vocab_size)
    w = TrainerWidget(cfg, data, run_dir=tmp_path, sample_every=0, **SETTINGS)
    w.start()
    try:
        wait_for(lambda: w.run is not None and (w.run.last_step or 0) >= 3)
        bundles = [w._repr_mimebundle_(), w._repr_mimebundle_()]
        model_ids = {b[0]["application/vnd.jupyter.widget-view+json"]["model_id"]
                     if isinstance(b, tuple) else
                     b["application/vnd.jupyter.widget-view+json"]["model_id"] for b in bundles}
        assert model_ids == {w.model_id}                  # two views of one widget
        assert TrainerWidget.attach(w.run.id, run_dir=tmp_path) is w   # not a second follower
        w.start_button.click()                            # Start in the other view
        assert w.status.kind == "error" and "training is already running" in w.status.message
    finally:
        w.stop()
        run = w.wait(60)
    xs = w.loss_chart.points("train/loss")[0]
    assert xs == logged_steps(run) and len(set(xs)) == len(xs)   # each step once
