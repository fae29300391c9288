"""``TrainerWidget``: train a model from a notebook without blocking the kernel.

Start, Pause, Stop and Resume run :class:`llmlab.Trainer` in a background thread, so the
buttons (and every other cell) keep working while it trains. A training callback feeds the
live loss and validation curves, learning rate, tokens/s, ETA, a progress bar and sample
generations, throttled to a few updates a second.

>>> trainer = TrainerWidget(builder, data, max_steps=500, eval_interval=100)   # doctest: +SKIP
>>> trainer                                         # the widget; or in code:  # doctest: +SKIP
>>> trainer.start(); trainer.wait()                 # doctest: +SKIP

Pausing stops after the current step and saves a checkpoint; resuming is
``trainer.fit(resume_from=run.id)``, the Trainer's exact resume (weights, optimizer, data
order and RNG), so a paused run ends where an uninterrupted one would.
"""

from __future__ import annotations

import html
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from llmlab.train.callbacks import Callback
from llmlab.train.config import CHOICES, TrainConfig
from llmlab.widgets.charts import LineChart
from llmlab.widgets.poll import Poller
from llmlab.widgets.snapshot import (
    Snapshot,
    control_values,
    settings_html,
    snapshot_html,
    text_html,
)
from llmlab.widgets.status import EXPECTED_ERRORS, StatusLine
from llmlab.widgets.throttle import Throttle

#: TrainConfig fields the widget has a control for (the other settings pass through unchanged).
CONTROLS = {"max_steps": "max steps", "batch_size": "batch size", "lr": "learning rate",
            "eval_interval": "eval every", "decay": "lr decay", "seed": "seed",
            "mixed_precision": "precision"}
#: How a choice reads in a dropdown, where the config's own word would puzzle.
CHOICE_LABELS = {("mixed_precision", "no"): "float32"}
SAMPLE_TOKENS = 60   # characters or tokens per sample generation
SAMPLES_SHOWN = 3    # the latest samples kept on screen
_STYLE = {"description_width": "95px"}
#: How long a new Start waits for the last run's thread to finish up (picture, callbacks)
FINISH_UP_SECONDS = 30.0
#: Seconds between two reads of a followed run (``TrainerWidget.attach``).
FOLLOW_INTERVAL = 1.0
#: Run folder -> the TrainerWidget of this kernel that trains or follows it (``attach``
#: hands that one back: another view of the same training, never a second follower).
_LIVE: weakref.WeakValueDictionary[Path, TrainerWidget] = weakref.WeakValueDictionary()


#: How much lower than the kernel's the training thread's OS priority is (a nice increment).
TRAINING_NICE = 10


def yield_to_the_notebook() -> None:
    """Lower the calling thread's CPU priority by :data:`TRAINING_NICE`, on Linux.

    A widget trains in a thread of the kernel, and torch's thread pool keeps every core busy.
    The kernel's main thread (which answers clicks), the browser and Jupyter then wait for the
    cores in turn with it. Behind a nice increment the training runs on whatever they leave
    idle, at full speed when nothing else wants the cores. Linux gives each thread its own
    nice value, and the pool's workers are created by this thread, so they inherit it; other
    systems set it per process, so there this does nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + TRAINING_NICE)
    except OSError:  # a sandbox that forbids it: train at the kernel's priority
        pass


class TrainerWidget(Snapshot, widgets.VBox):
    """Training controls, live curves and samples for one model and one data set.

    ``source`` is a ``ModelBuilder`` (its vocab_size is set from the data's tokenizer if it
    differs; it builds when there is no model yet), a ``ModelConfig`` (built at the first
    Start) or an ``nn.Module``. ``data`` is an ``llmlab.data`` object (e.g. ``CausalLMData``);
    ``train_settings`` are :class:`~llmlab.TrainConfig` fields. Each Start trains the current
    model in a new run: the weights the last run left, or a fresh build when the builder's
    form differs from the model's config.

    ``.model``, ``.tokenizer``, ``.trainer`` (the ``llmlab.Trainer``) and ``.run`` (the
    current or last run) make it a model source for the other widgets.
    """

    def __init__(self, source: Any, data: Any, *, run_dir: Any = None,
                 sample_every: int | None = None, sample_prompt: str | None = None,
                 **train_settings: Any):
        if getattr(data, "tokenizer", None) is None:
            raise TypeError(f"TrainerWidget needs an llmlab.data object with a tokenizer "
                            f"(e.g. CausalLMData.from_text(text, tok, seq_len=64)), got "
                            f"{type(data).__name__}")
        self.data, self.run_dir = data, run_dir
        self._builder, self._config, self._model = _split_source(source)
        self._setup(TrainConfig.from_dict(
            {**self._suggested(), **train_settings} if self._model_config() else train_settings),
            sample_every, _default_prompt(data) if sample_prompt is None else sample_prompt)

    def _setup(self, settings: TrainConfig, sample_every: int | None, prompt: str) -> None:
        """The controls, charts and buttons for ``settings`` (shared by ``__init__`` and
        :meth:`attach`)."""
        self._settings = settings
        self.trainer: Any = None
        self._follower: Poller | None = None
        self._followed: Any = None
        self._end_callbacks: list[Callable[[Any], object]] = []
        self._thread: threading.Thread | None = None
        self._fitting = False
        self.status = StatusLine()
        self.controls = {name: _control(name, label, getattr(self._settings, name))
                         for name, label in CONTROLS.items()}
        self.sample_every = widgets.IntText(
            self._settings.eval_interval if sample_every is None else sample_every,
            description="sample every", style=_STYLE,
            tooltip="steps between sample generations; 0 = none")
        self.sample_prompt = widgets.Text(prompt, description="prompt", style=_STYLE)
        self.start_button = _button("Start", "play", "success", self.start)
        self.pause_button = _button("Pause", "pause", "", self.pause)
        self.stop_button = _button("Stop", "stop", "danger", self.stop)
        self.resume_button = _button("Resume", "step-forward", "", self.resume)
        self.fresh = widgets.Checkbox(
            False, description="fresh weights", indent=False,
            layout=widgets.Layout(width="auto"),
            tooltip="Start from newly initialised weights instead of the ones the last run "
                    "left")
        self.progress = widgets.IntProgress(0, min=0, max=self._settings.max_steps)
        self.stats = widgets.HTML()
        self.loss_chart = LineChart("loss", y_title="cross-entropy (nats)")
        self.samples = widgets.HTML()
        self._view = _LiveView(self)
        if self._builder is not None:
            self._attach_builder()
        super().__init__(self._layout())
        self.add_class("llmlab-trainer")
        self._sync_buttons(running=False)

    # ------------------------------------------------------------------ model source API
    @property
    def model(self) -> Any:
        """The model Start trains (and the last run trained), or None before there is one."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The data's tokenizer (None for a widget that follows a run without its data)."""
        return None if self.data is None else self.data.tokenizer

    @property
    def run(self) -> Any:
        """The current or last :class:`~llmlab.runs.Run`, or None."""
        return self._followed if self.trainer is None else self.trainer.run

    @property
    def running(self) -> bool:
        """True while training runs in the background (not while its thread only finishes
        up: the last picture, the end callbacks)."""
        return self._fitting

    @property
    def train_config(self) -> TrainConfig:
        """The settings in the controls (ConfigError naming the fix when one is invalid)."""
        return self._settings.replace(**{n: c.value for n, c in self.controls.items()})

    # ------------------------------------------------------------------ actions (the buttons)
    def start(self) -> None:
        """Train in the background: ``llmlab.Trainer(model, data, settings).fit()``, a new run."""
        with self.status.reporting("starting training"):
            self._refuse_while_running("start")
            if self.data is None:
                raise RuntimeError(f"this widget shows run {self._followed.id} from the run "
                                   "store and has no data to train on: make a "
                                   "TrainerWidget(model, data) to start a new training")
            settings = self.train_config
            sample_every = self._sample_every()
            notes = self._prepare_model(settings.seed, fresh=self.fresh.value)
            from llmlab.train import Trainer

            self.trainer = Trainer(self._model, self.data, settings, run_dir=self.run_dir,
                                   callbacks=[self._view], progress=False)
            self.status.show(" ".join([*notes, f"training {settings.max_steps:,} steps…"]))
            self._launch(None, sample_every)

    def pause(self) -> None:
        """Stop after the current step and save a checkpoint there, for :meth:`resume`."""
        with self.status.reporting("pausing"):
            self._refuse_while_idle("pause")
            self._view.pause_requested = True
            self.status.show("pausing after the current step (saving a checkpoint)…")

    def stop(self) -> None:
        """Stop after the current step (``trainer.stop()``); the run is kept as interrupted."""
        with self.status.reporting("stopping"):
            self._refuse_while_idle("stop")
            self._view.stop_requested = True   # also holds if fit() is still setting up
            self.trainer.stop()
            self.status.show("stopping after the current step…")

    def resume(self) -> None:
        """Continue the paused or stopped run from its latest checkpoint:
        ``trainer.fit(resume_from=run.id)`` (max steps may change; other settings may not)."""
        with self.status.reporting("resuming"):
            self._refuse_while_running("resume")
            run = self.run
            checkpoint = None if run is None or run.status != "interrupted" else (
                run.latest_checkpoint())
            if checkpoint is None:
                raise RuntimeError("there is nothing to resume: Pause a running training "
                                   "first (it saves a checkpoint), or Start a new run")
            sample_every = self._sample_every()
            self.trainer.config = self.trainer.config.replace(
                max_steps=self.controls["max_steps"].value)
            self.status.show(f"resuming run {run.id} from {checkpoint.name}…")
            self._launch(run.id, sample_every)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until training ends (or ``timeout`` seconds pass); returns :attr:`run`.

        In a notebook run top to bottom, ``trainer.start(); trainer.wait()`` finishes the
        training before the next cell runs.
        """
        if self._thread is not None:
            self._thread.join(timeout)
            if not self.running:
                self.refresh_snapshot()   # from the cell that waited: nbclient records it
        return self.run

    def on_end(self, callback: Callable[[Any], object]) -> Callable[[Any], object]:
        """Call ``callback(run)`` in the training thread whenever training ends (usable as a
        decorator); ``Lab`` refreshes its run history this way."""
        if not callable(callback):
            raise TypeError(f"on_end needs a function taking the run, got "
                            f"{type(callback).__name__}")
        self._end_callbacks.append(callback)
        return callback

    # ------------------------------------------------------------------ following a run
    @classmethod
    def attach(cls, run_id: str | None = None, *, run_dir: Any = None, data: Any = None,
               interval: float = FOLLOW_INTERVAL) -> TrainerWidget:
        """A TrainerWidget showing run ``run_id`` of the store (default: its newest running
        run) as the run store has it: the whole curve, the numbers and samples, live.

        The run may train anywhere: a TrainerWidget of this kernel (that widget itself comes
        back, so the view is another view of the same training), ``Trainer.fit`` in a
        background thread, another kernel or ``python -m llmlab.train``. The widget reads the
        store every ``interval`` seconds until the run ends and then says how it ended; a run
        that is not running (finished, stopped, or interrupted by a kernel restart) is shown
        as it ended, with the reason. With ``data`` (the data it trained on), an interrupted
        run with a checkpoint can be resumed from the widget.

        >>> TrainerWidget.attach(run.id)                                 # doctest: +SKIP
        """
        from llmlab.widgets.follow import find_run, settings_of

        run = find_run(run_id, run_dir)
        live = _LIVE.get(run.path)
        if live is not None and (live.running or live.following):
            return live
        widget = cls.__new__(cls)
        widget.data, widget.run_dir = data, run.store.path
        widget._builder = widget._config = widget._model = None
        widget._setup(settings_of(run), 0, "")
        widget._follow(run, interval)
        return widget

    @property
    def following(self) -> bool:
        """True while the widget follows a run that trains elsewhere (see :meth:`attach`)."""
        return self._follower is not None and self._follower.running

    def _follow(self, run: Any, interval: float) -> None:
        self._followed = run
        _LIVE[run.path] = self
        self._view.max_steps = self._settings.max_steps
        for control in [*self.controls.values(), self.sample_every, self.sample_prompt]:
            control.disabled = True   # the run's settings, for reading
        self.status.show(f"following run {run.id} from the run store (it trains elsewhere: "
                         "stop it there)…")
        if self._follow_tick():   # drawn now; then read again every interval while it runs
            self._follower = Poller(self._follow_tick, interval, name="llmlab-follow")
            self._follower.start()

    def _follow_tick(self) -> bool:
        """Read the followed run again and draw it; False (no more reads) once it ended."""
        from llmlab.widgets.follow import ending, read_progress

        run = self._followed
        try:
            progress = read_progress(run)
        except EXPECTED_ERRORS as exc:
            self.status.error(f"{exc}; the view stops at step {self._view.last_step or 0:,}")
            return False
        self._view.ended = progress.status != "running"
        self._view.show_progress(progress)
        if not self._view.ended:
            return True
        self._adopt(run)
        self.status.show(*ending(run, progress, resumable=self.trainer is not None))
        self._sync_buttons(running=False)
        self.refresh_snapshot()
        return False

    def _adopt(self, run: Any) -> None:
        """With the run's data at hand, become the run's trainer so Resume can continue it
        (an interrupted run with a checkpoint and a model config)."""
        if (self.data is None or run.status != "interrupted" or run.config is None
                or run.latest_checkpoint() is None):
            return
        from llmlab.models import build_model
        from llmlab.train import Trainer

        self._model = build_model(run.config, seed=self._settings.seed)
        self.trainer = Trainer(self._model, self.data, self._settings, run_dir=self.run_dir,
                               callbacks=[self._view], progress=False)
        self.trainer.run = run   # resume() continues this run (fit loads its checkpoint)

    # ------------------------------------------------------------------ helpers
    def _refuse_while_running(self, action: str) -> None:
        if self.running:
            raise RuntimeError(f"cannot {action}: training is already running; Pause or Stop "
                               "it first")
        if self.following:
            raise RuntimeError(f"cannot {action}: run {self._followed.id} is still training "
                               "elsewhere; this widget only follows it")

    def _refuse_while_idle(self, action: str) -> None:
        if self.following:
            raise RuntimeError(f"cannot {action} run {self._followed.id} from here: it trains "
                               "in another kernel, thread or process; stop it there "
                               "(trainer.stop(), or Ctrl-C in its terminal)")
        if not self.running:
            raise RuntimeError(f"there is nothing to {action}: training is not running "
                               "(press Start)")

    def _sample_every(self) -> int:
        value = self.sample_every.value
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"sample every={value!r} must be 0 (no samples) or a number of "
                             "steps")
        return value

    def _prepare_model(self, seed: int, fresh: bool = False) -> list[str]:
        """Make sure there is a model that fits the data; say what was changed, and whether
        the run starts from the weights the last one left."""
        notes = []
        trained = self.run is not None and self._model is not None
        if fresh and trained:
            if self._builder is not None:
                self._builder.build()       # on_build hands the new model to _on_build
            else:
                from llmlab.models import build_model

                self._model = build_model(self._model.config, seed=seed)
            return ["Fresh weights."]
        if trained and (self._builder is None or self._model.config == self._builder.config):
            notes.append(f"Continuing from the weights run {self.run.id} left (tick 'fresh "
                         "weights' to start over).")
        if self._builder is not None:
            notes += self._fit_builder_vocab()
            if self._model is None or self._model.config != self._builder.config:
                self._builder.build()        # on_build hands the new model to _on_build
                notes.append("Built the model from the builder's form.")
        elif self._model is None:
            from llmlab.models import build_model

            self._model = build_model(self._config, seed=seed)
        return notes

    def _model_config(self) -> Any:
        """The config of the model Start would train (None when the builder's form is invalid)."""
        if self._builder is not None:
            try:
                return self._builder.config
            except EXPECTED_ERRORS:
                return None
        return self._config if self._model is None else getattr(self._model, "config", None)

    def _suggested(self) -> dict[str, Any]:
        """The precision that trains this model fastest here (llmlab.train.suggested_settings)."""
        from llmlab.train import suggested_settings

        device = None if self._model is None else next(self._model.parameters()).device.type
        return {"mixed_precision":
                suggested_settings(self._model_config(), device)["mixed_precision"]}

    def _attach_builder(self) -> None:
        builder = self._builder
        builder.on_build(self._on_build)
        if builder.tokenizer is None:
            builder.tokenizer = self.tokenizer
        try:
            notes = self._fit_builder_vocab()
        except EXPECTED_ERRORS:
            return  # an invalid form: the builder shows why; Start says it again
        if notes:
            self.status.show(notes[0])

    def _fit_builder_vocab(self) -> list[str]:
        cfg, size = self._builder.config, self.tokenizer.vocab_size
        if cfg.vocab_size == size:
            return []
        self._builder.load_config(cfg.replace(vocab_size=size))
        return [f"Set the builder's vocab_size from {cfg.vocab_size} to {size}, the size of "
                "the data's tokenizer."]

    def _on_build(self, model: Any) -> None:
        self._model = model
        note = " (the running training keeps its model)" if self.running else ""
        self.status.show(f"new model from the builder: the next Start trains it{note}")

    def _launch(self, resume_from: str | None, sample_every: int) -> None:
        if self._thread is not None:
            self._thread.join(FINISH_UP_SECONDS)   # the last run's thread finishing up
        self._view.prepare(sample_every, self.sample_prompt.value)
        self._fitting = True
        self._sync_buttons(running=True)   # before the thread, which resets them when done
        self._thread = threading.Thread(target=self._fit, args=(resume_from,),
                                        name="llmlab-trainer-widget", daemon=True)
        self._thread.start()

    def _sync_buttons(self, running: bool) -> None:
        """Enable the buttons that do something now: Pause and Stop while training, Start
        when idle, Resume when the last run was paused or stopped with a checkpoint."""
        run = self.run
        resumable = (not running and self.trainer is not None and run is not None
                     and run.status == "interrupted"
                     and run.latest_checkpoint() is not None)
        self.start_button.disabled = self.fresh.disabled = running or self.data is None
        self.pause_button.disabled = self.stop_button.disabled = not running
        self.resume_button.disabled = not resumable

    def _fit(self, resume_from: str | None) -> None:
        """The training thread: fit, then say how it ended."""
        yield_to_the_notebook()
        try:
            with self.status.reporting("training"):
                try:
                    run = self.trainer.fit(resume_from=resume_from)
                finally:
                    self._fitting = False   # Start may be pressed as soon as this is said:
                self.status.show(*self._ending(run))
        except Exception as exc:   # a bug: say so here, and keep the traceback (thread log)
            self.status.error(f"training failed unexpectedly: {type(exc).__name__}: {exc}")
            raise
        finally:
            self._view.flush()
            self._sync_buttons(running=False)
            self.refresh_snapshot()
        for callback in self._end_callbacks:
            with self.status.reporting("after training"):
                callback(self.run)

    def _ending(self, run: Any) -> tuple[str, str]:
        step = self.trainer.step
        if run.status == "finished":
            val = self._view.last_val
            return (f"finished run {run.id}: {step:,} steps"
                    + (f", val loss {val:.4f}" if val is not None else ""), "ok")
        if self._view.paused:
            return (f"paused at step {step:,} (checkpoint saved): Resume continues run "
                    f"{run.id}", "info")
        checkpoint = run.latest_checkpoint()
        again = (f"; Resume continues from {checkpoint.name}" if checkpoint is not None
                 else "; no checkpoint was saved yet")
        return f"stopped at step {step:,}: run {run.id} is kept as interrupted{again}", "info"

    def static_html(self) -> str:
        """Settings, status and numbers, the loss curves as a picture, the latest samples."""
        view = self._view
        settings = {**control_values(self.controls), "sample every": self.sample_every.value,
                    "prompt": self.sample_prompt.value}
        state = self._state()
        numbers = view.summary() if view.last_step is not None else ""
        samples = "".join(f"<pre style='margin:2px 0;white-space:pre-wrap'>{html.escape(s)}"
                          "</pre>" for s in view._recent)
        return snapshot_html(
            "trainer", settings_html(settings),
            text_html(numbers, kind="numbers"), text_html(self.status.message, kind="status"),
            self.loss_chart.static_img(), samples,
            title=f"TrainerWidget ({state})" + (f" · run {self.run.id}" if self.run else ""))

    def _state(self) -> str:
        if self.running or self.following:
            return "running" if self.running else "following"
        return self.run.status if self.run else "idle"

    def _layout(self) -> list[widgets.Widget]:
        grid = widgets.GridBox([*self.controls.values(), self.sample_every, self.sample_prompt],
                               layout=widgets.Layout(
                                   grid_template_columns="repeat(3, minmax(240px, 1fr))",
                                   grid_gap="2px 12px"))
        buttons = widgets.HBox([self.start_button, self.pause_button, self.stop_button,
                                self.resume_button, self.fresh])
        return [grid, buttons, widgets.HBox([self.progress, self.stats]), self.status,
                self.loss_chart, self.samples]

    def __repr__(self) -> str:
        state = self._state()
        parts = [f"TrainerWidget ({state})"]
        if self._view.last_step is not None:
            parts.append(self._view.summary())
        if self.status.message:
            parts.append(self.status.message)
        return " | ".join(parts)


class _LiveView(Callback):
    """The training callback behind the widget: curves, numbers, samples, pause."""

    def __init__(self, widget: TrainerWidget):
        self.widget = widget
        self.pause_requested = self.paused = self.stop_requested = self.ended = False
        self.sample_every, self.prompt = 0, ""
        self.last_step: int | None = None
        self.last_loss = self.last_val = self.lr = self.tokens_per_s = self.mfu = None
        self.max_steps, self.eta = 0, None
        self._recent: list[str] = []
        self._clock: tuple[float, int] = (time.monotonic(), 0)
        self._refresh = Throttle(self._draw)

    def prepare(self, sample_every: int, prompt: str) -> None:
        """Before a (re)start: the sample settings; forget an earlier pause."""
        self.sample_every, self.prompt = sample_every, prompt
        self.pause_requested = self.paused = self.stop_requested = self.ended = False

    # -- trainer hooks (called in the training thread) ------------------------------------
    def on_start(self, trainer: Any) -> None:
        chart = self.widget.loss_chart
        if trainer.run is not None:
            _LIVE[trainer.run.path] = self.widget
        self.max_steps = trainer.config.max_steps
        self._clock, self.eta = (time.monotonic(), trainer.step), None
        if trainer.step == 0:
            chart.clear()
            self.last_val, self._recent = None, []
        else:   # resumed: the curves as the run store has them up to the checkpoint
            _load_curves(chart, trainer.run, trainer.step)
        self.widget.progress.max = self.max_steps
        self._note_step(trainer.step, {})
        self._refresh()

    def on_step(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self._note_step(step, metrics)
        self.widget.loss_chart.append("train/loss", step, metrics["train/loss"])
        if self.sample_every and step % self.sample_every == 0:
            self._sample(trainer, step)
        if self.pause_requested and not self.paused and step < trainer.config.max_steps:
            trainer.save_checkpoint()
            trainer.stop()
            self.paused = True
        if self.stop_requested:
            trainer.stop()
        self._refresh()

    def on_eval(self, trainer: Any, step: int, metrics: dict[str, float]) -> None:
        self.last_val = metrics["val/loss"]
        self.widget.loss_chart.append("val/loss", step, metrics["val/loss"])
        self._refresh()

    def on_end(self, trainer: Any, run: Any) -> None:
        self.ended = True
        self.flush()

    def flush(self) -> None:
        """Draw everything held back by the throttles."""
        self.widget.loss_chart.flush()
        self._draw()

    # -- state and drawing ----------------------------------------------------------------
    def _note_step(self, step: int, metrics: dict[str, float]) -> None:
        self.last_step = step
        self.last_loss = metrics.get("train/loss", self.last_loss)
        self.lr = metrics.get("lr", self.lr)
        self.tokens_per_s = metrics.get("tokens_per_s", self.tokens_per_s)
        self.mfu = metrics.get("mfu", self.mfu)
        started, first = self._clock
        done = step - first
        if done > 0:
            per_step = (time.monotonic() - started) / done
            self.eta = per_step * max(self.max_steps - step, 0)

    def show_progress(self, progress: Any) -> None:
        """Show a run as the store has it (a :class:`~llmlab.widgets.follow.Progress`)."""
        if progress.last_step is None:
            return
        _set_curves(self.widget.loss_chart, progress.metrics)
        self.last_val = progress.last_val
        self._note_step(progress.last_step, progress.last)
        self._recent = progress.samples
        self._draw()

    def _sample(self, trainer: Any, step: int) -> None:
        from llmlab.generation import generate

        try:
            text = generate(trainer.model, trainer.data.tokenizer, self.prompt,
                            max_new_tokens=SAMPLE_TOKENS, temperature=0.8, seed=0,
                            on_overflow="slide").text
        except EXPECTED_ERRORS as exc:
            text = f"(no sample: {exc})"
        else:
            if trainer.run is not None:
                trainer.run.log_sample(step, self.prompt, text)
        self._recent = [f"step {step}: {self.prompt}{text}", *self._recent][:SAMPLES_SHOWN]

    def summary(self) -> str:
        """The numbers line as plain text."""
        parts = [f"step {self.last_step:,}/{self.max_steps:,}"]
        if self.last_loss is not None:
            parts.append(f"loss {self.last_loss:.4f}")
        if self.last_val is not None:
            parts.append(f"val {self.last_val:.4f}")
        if self.lr is not None:
            parts.append(f"lr {self.lr:.2e}")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:,.0f} tok/s")
        if self.mfu is not None:   # known on a GPU, or with peak_flops set
            parts.append(f"MFU {self.mfu:.1%}")
        if self.eta is not None and not self.ended and self.last_step < self.max_steps:
            parts.append(f"ETA {_duration(self.eta)}")
        return " · ".join(parts)

    def _draw(self) -> None:
        widget = self.widget
        if self.last_step is None:
            return
        widget.progress.value = min(self.last_step, widget.progress.max)
        widget.stats.value = f"<span class='llmlab-trainer-stats'>{html.escape(self.summary())}</span>"
        widget.samples.value = "".join(
            f"<pre style='margin:2px 0;white-space:pre-wrap'>{html.escape(s)}</pre>"
            for s in self._recent)


def _split_source(source: Any) -> tuple[Any, Any, Any]:
    """(builder, config, model): which kind of model source this is."""
    import torch

    from llmlab.config import ModelConfig

    if isinstance(source, ModelConfig):
        return None, source, None
    if isinstance(source, torch.nn.Module):
        return None, None, source
    if all(hasattr(source, name) for name in ("config", "build", "on_build", "load_config")):
        return source, None, source.model
    raise TypeError(f"TrainerWidget trains a ModelBuilder, a ModelConfig or an nn.Module; got "
                    f"{type(source).__name__}")


def _control(name: str, label: str, value: Any) -> widgets.ValueWidget:
    style = _STYLE
    if name == "mixed_precision":
        return _precision_control(label, value)
    if name in CHOICES:
        return widgets.Dropdown(options=choice_options(name), value=value, description=label,
                                style=style)
    if isinstance(value, float):
        return widgets.FloatText(value, description=label, style=style)
    return widgets.IntText(value, description=label, style=style)


def choice_options(name: str) -> list[tuple[str, Any]]:
    """The dropdown options of the TrainConfig choice ``name``: ``(label, value)`` for every
    value of ``llmlab.train.config.CHOICES[name]``, in its order.

    >>> choice_options("decay")
    [('cosine', 'cosine'), ('linear', 'linear'), ('constant', 'constant')]
    """
    return [(CHOICE_LABELS.get((name, value), str(value)), value) for value in CHOICES[name]]


def _precision_control(label: str, value: str) -> widgets.Dropdown:
    """The config's precisions this machine runs: bf16 where it computes it natively, fp16
    on a GPU, float32 always."""
    import torch

    from llmlab.train.hardware import cpu_has_bf16

    gpu = torch.accelerator.is_available()
    runs_here = {"no": True, "bf16": gpu or cpu_has_bf16(), "fp16": gpu}
    options = [option for option in choice_options("mixed_precision") if runs_here[option[1]]]
    if value not in [v for _, v in options]:
        options.append((value, value))  # what the caller asked for; Start says why it fails
    return widgets.Dropdown(
        options=options, value=value, description=label, style=_STYLE,
        tooltip="bf16 autocast: faster on GPUs and, from width 256, on CPUs with "
                "AVX512-BF16/AMX; the default is the faster one for this model here")


def _button(label: str, icon: str, style: str, action: Any) -> widgets.Button:
    button = widgets.Button(description=label, icon=icon, button_style=style,
                            layout=widgets.Layout(width="110px"))
    button.on_click(lambda _button: action())
    return button


def _default_prompt(data: Any) -> str:
    """The first line of the training text (at most its first 40 characters, cut at a word):
    a prompt the tokenizer surely encodes, e.g. "First Citizen:" for Shakespeare."""
    ids = getattr(data, "train_ids", None)
    if ids is None:
        return ""
    text = data.tokenizer.decode(ids[:64].tolist())
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if len(line) > 40:
        line = line[:40].rsplit(" ", 1)[0] if " " in line[:40] else line[:40]
    return line


def _load_curves(chart: LineChart, run: Any, upto: int) -> None:
    import polars as pl

    chart.clear()
    _set_curves(chart, run.metrics.filter(pl.col("step") <= upto))


def _set_curves(chart: LineChart, frame: Any) -> None:
    """The loss curves of a run's wide metrics frame, each series replaced as a whole."""
    for name in ("train/loss", "val/loss"):
        if name in frame.columns:
            points = frame.select("step", name).drop_nulls()
            chart.set_series(name, points["step"].to_list(), points[name].to_list())


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
