"""TrainerWidget: training in a background thread, its controls, live view and messages.

Tiny models and a few steps; training threads are joined with ``wait()``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import ipywidgets
import pytest
import torch

import llmlab
from llmlab.widgets import resolve_model
from llmlab.widgets.trainer import TrainerWidget

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = dict(max_steps=12, batch_size=4, eval_interval=4, eval_batches=2, lr=3e-3)


@pytest.fixture(scope="module")
def data():
    text = (SHARED_DATA / "tinyshakespeare.txt").read_text(encoding="utf-8")[:20_000]
    tok = llmlab.CharTokenizer.train(text)
    return llmlab.data.CausalLMData.from_text(text, tok, seq_len=16)


def tiny_config(data, **changes):
    fields = dict(family="gpt", n_layer=1, n_head=2, d_model=16, context_length=16,
                  vocab_size=data.tokenizer.vocab_size)
    return llmlab.ModelConfig(**{**fields, **changes})


def widget(data, tmp_path, **settings):
    return TrainerWidget(tiny_config(data), data, run_dir=tmp_path, **{**TINY, **settings})


def wait_for(condition, timeout=60.0):
    """Poll until ``condition()`` holds (training runs in another thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the training thread did not get there in time"
        time.sleep(0.01)


def test_start_trains_in_the_background_and_shows_the_run(data, tmp_path):
    w = widget(data, tmp_path, sample_every=6)
    assert isinstance(w, ipywidgets.VBox) and w.model is None and w.run is None
    w.start_button.click()
    assert w.status.kind == "info" and "training 12 steps" in w.status.message
    run = w.wait()
    assert not w.running
    assert run.status == "finished" and w.trainer.step == 12
    assert w.status.kind == "ok" and f"finished run {run.id}: 12 steps" in w.status.message
    metrics = run.metrics
    xs, ys = w.loss_chart.points("train/loss")
    assert xs == list(range(1, 13)) and ys == pytest.approx(metrics["train/loss"].to_list())
    val_steps = w.loss_chart.points("val/loss")[0]
    assert val_steps == [4, 8, 12]
    assert w.loss_chart.figure.data[0].x == tuple(xs)        # flushed at the end
    assert w.progress.value == w.progress.max == 12
    assert "step 12/12" in w.stats.value and "tok/s" in w.stats.value
    assert run.samples["step"].to_list() == [6, 12]            # samples go to the run store
    assert w.samples.value.count("<pre") == 2 and "step 12: " in w.samples.value
    model, tok = resolve_model(w)                              # a model source for other widgets
    assert model is w.trainer.model and tok is data.tokenizer
    assert "TrainerWidget (finished)" in repr(w) and "step 12/12" in repr(w)


def thread_nice() -> dict[int, int]:
    """The nice value of each thread of this process, by thread id (Linux's /proc)."""
    tasks = Path("/proc/self/task")
    return {int(t.name): int((t / "stat").read_text().rsplit(")", 1)[1].split()[16])
            for t in tasks.iterdir()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_training_yields_the_cores_to_the_notebook(data, tmp_path, monkeypatch):
    """The training thread and the torch workers it starts run TRAINING_NICE below the
    kernel, so clicks, the browser and a generation beside it are served first."""
    from llmlab.train.trainer import Trainer
    from llmlab.widgets.trainer import TRAINING_NICE

    kernel = os.getpriority(os.PRIO_PROCESS, 0)
    seen = []
    step = Trainer._train_step

    def watched(self, *args):
        out = step(self, *args)
        seen.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), thread_nice()))
        return out

    monkeypatch.setattr(Trainer, "_train_step", watched)
    w = widget(data, tmp_path, max_steps=3)
    w.start_button.click()
    assert w.wait().status == "finished"
    mine, threads = seen[-1]
    assert TRAINING_NICE > 0 and mine == kernel + TRAINING_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == kernel  # untouched
    # the thread and its pool's workers (torch.get_num_threads() of them in all) were lowered
    assert sum(nice == mine for nice in threads.values()) >= torch.get_num_threads()


def test_controls_set_the_training_settings(data, tmp_path):
    w = widget(data, tmp_path)
    w.controls["max_steps"].value = 5
    w.controls["decay"].value = "linear"
    assert w.train_config.max_steps == 5 and w.train_config.decay == "linear"
    assert w.train_config.eval_batches == 2                   # settings without a control pass through
    w.start()
    assert w.wait().status == "finished" and w.trainer.step == 5
    assert w.run.manifest["training"]["decay"] == "linear"


def test_stop_ends_a_run_after_the_current_step(data, tmp_path):
    w = widget(data, tmp_path, max_steps=100_000, eval_interval=1_000)
    w.start()
    wait_for(lambda: w.trainer.step >= 2)
    w.stop_button.click()
    assert "stopping" in w.status.message
    run = w.wait(timeout=60)
    assert not w.running
    assert run.status == "interrupted" and 2 <= w.trainer.step < 100_000
    assert f"stopped at step {w.trainer.step:,}" in w.status.message
    assert len(w.loss_chart.points("train/loss")[0]) == w.trainer.step


def test_stop_right_after_start_is_not_lost(data, tmp_path):
    w = widget(data, tmp_path, max_steps=100_000)
    w.start()
    w.stop()                                   # while fit() may still be setting up
    run = w.wait(timeout=60)
    assert run.status == "interrupted" and w.trainer.step <= 1
    assert "stopped at step" in w.status.message


def test_pause_and_resume_end_where_an_uninterrupted_run_ends(data, tmp_path):
    straight = widget(data, tmp_path)
    straight.start()
    expected = straight.wait().metrics

    w = widget(data, tmp_path)
    w.start()
    w.pause_button.click()
    assert "pausing" in w.status.message
    run = w.wait()
    paused_at = w.trainer.step
    assert run.status == "interrupted" and 1 <= paused_at < 12
    assert run.latest_checkpoint().name.endswith(str(paused_at))
    assert "Resume continues" in w.status.message
    w.resume_button.click()
    assert "resuming run" in w.status.message
    assert w.wait() == run and run.status == "finished" and w.trainer.step == 12
    resumed = run.metrics
    assert resumed["step"].to_list() == expected["step"].to_list()
    assert resumed["train/loss"].to_list() == pytest.approx(expected["train/loss"].to_list(),
                                                            abs=1e-5)
    assert w.loss_chart.points("train/loss")[0] == list(range(1, 13))


def test_wrong_state_actions_give_messages_not_tracebacks(data, tmp_path):
    w = widget(data, tmp_path)
    for button, words in ((w.stop_button, "nothing to stop"), (w.pause_button, "nothing to pause"),
                          (w.resume_button, "nothing to resume")):
        button.click()
        assert w.status.kind == "error" and words in w.status.message
    w.start()
    w.start_button.click()                                     # starting twice
    second = w.status.message
    w.resume_button.click()                                    # resuming while it runs
    resumed = w.status.message
    w.wait()
    assert "already running" in second and "already running" in resumed
    w.resume_button.click()                                    # a finished run: nothing to resume
    assert w.status.kind == "error" and "nothing to resume" in w.status.message


def test_bad_settings_and_models_are_reported(data, tmp_path):
    w = widget(data, tmp_path)
    w.controls["lr"].value = -1.0
    w.start_button.click()
    assert w.status.kind == "error" and "lr" in w.status.message and not w.running
    w.controls["lr"].value = 1e-3
    w.sample_every.value = -2
    w.start_button.click()
    assert w.status.kind == "error" and "sample every" in w.status.message

    small = llmlab.build_model(tiny_config(data, vocab_size=10))
    w = TrainerWidget(small, data, run_dir=tmp_path, **TINY)
    w.start_button.click()
    assert w.status.kind == "error" and "vocab_size" in w.status.message and not w.running


def test_constructor_names_bad_arguments(data, tmp_path):
    with pytest.raises(TypeError, match="ModelBuilder, a ModelConfig or an nn.Module"):
        TrainerWidget("gpt", data)
    with pytest.raises(TypeError, match="tokenizer"):
        TrainerWidget(tiny_config(data), object())
    with pytest.raises(llmlab.errors.ConfigError, match="max_step"):
        TrainerWidget(tiny_config(data), data, max_step=10)


def test_a_module_source_keeps_training_the_same_model(data, tmp_path):
    model = llmlab.build_model(tiny_config(data), seed=0)
    w = TrainerWidget(model, data, run_dir=tmp_path, **{**TINY, "max_steps": 3})
    assert w.model is model
    w.start()
    first = w.wait()
    w.start()
    second = w.wait()
    assert first != second and w.trainer.model is model
    assert second.metrics["train/loss"][0] < first.metrics["train/loss"][0]


def test_precision_defaults_to_the_fastest_for_the_model_on_this_machine(data, tmp_path,
                                                                         monkeypatch):
    from llmlab.train import hardware

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    narrow = widget(data, tmp_path)
    assert narrow.controls["mixed_precision"].value == "no"  # 16 wide: bf16 does not pay
    wide = TrainerWidget(tiny_config(data, d_model=256, n_head=4), data, run_dir=tmp_path,
                         **TINY)
    assert wide.controls["mixed_precision"].value == "bf16"
    assert wide.train_config.mixed_precision == "bf16"
    chosen = TrainerWidget(tiny_config(data, d_model=256, n_head=4), data, run_dir=tmp_path,
                           mixed_precision="no", **TINY)
    assert chosen.controls["mixed_precision"].value == "no"  # the caller's choice wins
    assert ("bf16", "bf16") in chosen.controls["mixed_precision"].options


def test_bf16_is_not_offered_on_a_cpu_without_it(data, tmp_path, monkeypatch):
    from llmlab.train import hardware

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    w = TrainerWidget(tiny_config(data, d_model=256, n_head=4), data, run_dir=tmp_path, **TINY)
    assert w.controls["mixed_precision"].value == "no"
    assert [v for _, v in w.controls["mixed_precision"].options] == ["no"]


def enabled(w):
    return {b.description for b in (w.start_button, w.pause_button, w.stop_button,
                                    w.resume_button) if not b.disabled}


def test_buttons_are_enabled_only_where_they_do_something(data, tmp_path):
    w = widget(data, tmp_path, max_steps=100_000)
    assert enabled(w) == {"Start"} and not w.fresh.disabled
    w.start()
    assert enabled(w) == {"Pause", "Stop"} and w.fresh.disabled
    w.pause()
    w.wait(timeout=60)
    assert enabled(w) == {"Start", "Resume"}      # paused with a checkpoint
    w.resume()
    assert enabled(w) == {"Pause", "Stop"}
    w.stop()
    w.wait(timeout=60)
    assert "Start" in enabled(w) and "Pause" not in enabled(w)
    finished = widget(data, tmp_path)
    finished.start()
    finished.wait()
    assert enabled(finished) == {"Start"}          # a finished run has nothing to resume


def test_start_after_a_run_says_it_continues_or_starts_fresh(data, tmp_path):
    w = widget(data, tmp_path, max_steps=3)
    w.start()
    first = w.wait()
    w.start()
    assert f"Continuing from the weights run {first.id} left" in w.status.message
    second = w.wait()
    assert second.metrics["train/loss"][0] < first.metrics["train/loss"][0]
    trained = w.model
    w.fresh.value = True
    w.start()
    assert "Fresh weights" in w.status.message and w.model is not trained
    third = w.wait()
    assert third.metrics["train/loss"][0] == pytest.approx(first.metrics["train/loss"][0],
                                                           abs=1e-5)


def test_the_sample_prompt_defaults_to_the_first_line_of_the_text(data, tmp_path):
    assert widget(data, tmp_path).sample_prompt.value == "First Citizen:"


def test_the_choice_dropdowns_offer_exactly_the_configs_choices(data, tmp_path, monkeypatch):
    import torch

    from llmlab.errors import ConfigError
    from llmlab.train import hardware
    from llmlab.train.config import CHOICES, TrainConfig

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)  # a GPU machine
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("cuda"))
    w = widget(data, tmp_path)
    for name in ("decay", "mixed_precision"):
        offered = [value for _, value in w.controls[name].options]
        assert offered == list(CHOICES[name])
        for value in offered:   # each one is a setting TrainConfig accepts
            w.controls[name].value = value
            assert getattr(w.train_config, name) == value
    assert dict(w.controls["mixed_precision"].options)["float32"] == "no"
    with pytest.raises(ConfigError, match="use one of"):
        TrainConfig(decay="cosinus")


def test_the_numbers_line_shows_tokens_per_second_and_mfu_when_known(data, tmp_path):
    cpu = widget(data, tmp_path)
    cpu.start()
    run = cpu.wait()
    speed = run.metrics["tokens_per_s"].drop_nulls()[-1]
    assert f"{speed:,.0f} tok/s" in cpu.stats.value and "MFU" not in cpu.stats.value
    peak = widget(data, tmp_path, peak_flops=1e12)   # a peak given: MFU is known
    peak.start()
    run = peak.wait()
    mfu = run.metrics["mfu"].drop_nulls()[-1]
    assert mfu > 0 and f"MFU {mfu:.1%}" in peak.stats.value
    assert f"MFU {mfu:.1%}" in peak.static_html()


def in_state(data, tmp_path, state):
    """A TrainerWidget brought to ``state``: idle, running, paused, stopped or finished."""
    w = widget(data, tmp_path, max_steps=100_000 if state in ("running", "paused", "stopped")
               else TINY["max_steps"])
    if state == "idle":
        return w
    w.start()
    if state == "paused":
        w.pause()
    elif state == "stopped":
        w.stop()
    if state != "running":
        w.wait(timeout=60)
    return w


def observed(w):
    """What a person sees of the widget's state: training or not, and its last run's status."""
    return (w.running, None if w.run is None else w.run.path)


@pytest.mark.parametrize("state", ["idle", "running", "paused", "stopped", "finished"])
def test_every_button_in_every_state_acts_or_says_why_not(data, tmp_path, state):
    """The state machine: a button enabled in a state changes what the widget does; a
    disabled one (clicked anyway, as code can) changes nothing and says why, in words for
    the person at the screen (no traceback)."""
    for button in ("start", "pause", "stop", "resume"):
        w = in_state(data, tmp_path / state / button, state)
        control = getattr(w, f"{button}_button")
        before, was_enabled = observed(w), not control.disabled
        control.click()
        message = w.status.message
        assert message and "Traceback" not in message, (state, button)
        if was_enabled:
            assert w.status.kind != "error", (state, button, message)
            acted = observed(w) != before or (button in ("pause", "stop") and (
                w.wait(timeout=60) or not w.running))
            assert acted, (state, button, message)
        else:
            assert w.status.kind == "error" and observed(w) == before, (state, button, message)
        if w.running:
            w.stop()
            w.wait(timeout=60)
