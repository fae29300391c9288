"""``Trainer``: trains an llmlab model on accelerate and records the run in the run store.

>>> trainer = Trainer(model, data, max_steps=200, lr=1e-3, batch_size=12)   # doctest: +SKIP
>>> run = trainer.fit()                                                      # doctest: +SKIP
>>> run.metrics                                                              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from llmlab.errors import ConfigError, TrainingError
from llmlab.estimate import param_count
from llmlab.runs import checkpoints
from llmlab.train import throughput
from llmlab.train.callbacks import Callback, ProgressBar
from llmlab.train.config import MACHINE_SETTINGS, TrainConfig, lr_at
from llmlab.train.hardware import check_machine
from llmlab.train.sharding import accelerator_plugins, check_resume_processes
from llmlab.train.state import TrainerState, check_compatible, fresh_accelerator


def _optimizer_step(accelerator, optimizer) -> None:
    """``optimizer.step()``, skipping accelerate's wrapper where it only adds cost.

    Without a gradient scaler (fp16), on one device or with DDP, the wrapper's step is the
    inner optimizer's step, but it first looks for the optional ``lomo_optim`` package,
    twice, with an importlib search each time: ~0.6 ms per step, 1.5% of a baby-char step on
    a CPU.
    """
    from accelerate.utils import DistributedType

    plain = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)
    if (accelerator.scaler is None and accelerator.distributed_type in plain
            and hasattr(optimizer, "optimizer")):
        optimizer.optimizer.step()
    else:
        optimizer.step()


class Trainer:
    """Trains ``model`` on ``data`` (an ``llmlab.data`` batch maker) with AdamW on accelerate.

    Settings are a :class:`TrainConfig` or its fields as keyword arguments. Every run is
    recorded in the run store at ``run_dir`` (metrics, checkpoints, manifest); only the main
    process writes it.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Any,
        config: TrainConfig | None = None,
        *,
        run_dir: str | Path | None = None,
        run_name: str | None = None,
        callbacks: list[Callback] | None = None,
        log_with: list[Any] | None = None,
        progress: bool = True,
        **settings: Any,
    ):
        self.config = (config or TrainConfig()).replace(**settings) if settings else (
            config or TrainConfig())
        self.model, self.data = model, data
        check_compatible(model, data, self.config)
        check_machine(self.config)
        from llmlab.runs import RunStore

        self.store = RunStore(run_dir)
        self.run_name = run_name
        self.callbacks = list(callbacks or []) + ([ProgressBar()] if progress else [])
        self.log_with = list(log_with or [])
        self.run = None
        self.step = 0
        self._stop_requested = False

    # ------------------------------------------------------------------ public verbs
    def fit(self, resume_from: str | Path | None = None, *, exact: bool = True):
        """Train to ``max_steps`` and return the :class:`~llmlab.runs.Run`.

        ``resume_from`` is a run id (or run folder) of this store: training continues from that
        run's latest intact checkpoint (a damaged newer one is passed over with a warning), in
        the same run. A resume is exact or refuses: when the RNG or data-sampler state of the
        checkpoint is missing or damaged it stops with the file's name, unless ``exact=False``,
        which continues (reseeding what is lost), warns, and records ``resume_exact: false``
        in the run's manifest. A KeyboardInterrupt ends training cleanly: the run is marked
        interrupted and keeps its last complete checkpoint.

        >>> run = trainer.fit(resume_from=run.id)                       # doctest: +SKIP
        """
        self._stop_requested = False
        accelerator = fresh_accelerator(self.config, self.log_with, self.store.path,
                                        **accelerator_plugins(self.config, self.model))
        # MFU's two terms, fixed for the run: the model's FLOPs per token, the device's peak
        self._mfu_terms = (throughput.flops_per_token(self.model, self.data.seq_len),
                           throughput.run_peak_flops(self.config, accelerator.device))
        self.accelerator = accelerator
        model, optimizer = self._prepare(accelerator)
        self.state = TrainerState(seed=self.config.seed)
        resumed = self.store.get(Path(str(resume_from)).name) if resume_from else None
        inexact: list[str] = []
        if resumed is not None:
            self._check_resumable(resumed)
            inexact = self._load_checkpoint(accelerator, resumed, exact)
        self.run = self._open_run(accelerator, resumed)
        if resumed is not None and self.run is not None:
            self.run.update_manifest(resume_exact=not inexact)
        if accelerator.is_main_process and self.log_with:
            accelerator.init_trackers(self.run.id, config=self.config.to_dict())
        try:
            self._loop(accelerator, model, optimizer)
        except KeyboardInterrupt:
            self._end(accelerator, "interrupted", "interrupted by the user (KeyboardInterrupt)")
            print(f"Training interrupted at step {self.step}; resume with "
                  f"trainer.fit(resume_from={self.run.id!r}) if a checkpoint was saved.")
            return self.run
        except BaseException as err:
            self._end(accelerator, "failed", f"{type(err).__name__}: {err}")
            raise
        if self.step < self.config.max_steps:
            self._end(accelerator, "interrupted", f"stopped at step {self.step} by trainer.stop()")
        else:
            self._end(accelerator, "finished", None)
        return self.run

    def to_spec(self, path: str | Path):
        """Write this training as a spec file for ``python -m llmlab.train`` / ``accelerate
        launch``; what a spec cannot name (trained weights, data built in Python) is saved
        beside it. Returns a :class:`~llmlab.train.launch.SpecFile` whose ``notes`` say what.

        >>> trainer.to_spec("spec.json")                                # doctest: +SKIP
        """
        from llmlab.train.launch import write_spec

        return write_spec(self, path)

    def launch_command(self, num_processes: int = 1, num_machines: int = 1,
                       spec: str | Path | None = None) -> str:
        """The ``accelerate launch ... -m llmlab.train spec.json`` line for the spec written by
        :meth:`to_spec` (or ``spec``), on ``num_processes`` processes over all machines."""
        from llmlab.train.launch import launch_command

        spec = spec if spec is not None else getattr(self, "_spec_path", None)
        if spec is None:
            raise ConfigError("launch_command needs a spec file: call trainer.to_spec("
                              "'spec.json') first, or pass spec=.")
        return launch_command(spec, num_processes=num_processes, num_machines=num_machines)

    def launch_in_notebook(self, num_processes: int):
        """Train in ``num_processes`` processes forked from this kernel (accelerate's
        ``notebook_launcher``); returns the run. Call it before anything uses the GPU."""
        from llmlab.train.launch import notebook_launch

        return notebook_launch(self, num_processes)

    def stop(self) -> None:
        """Ask training to stop after the current step (widgets call this)."""
        self._stop_requested = True

    def evaluate(self) -> dict[str, float]:
        """Validation loss (and perplexity or accuracy) on ``eval_batches`` fixed batches."""
        accelerator = getattr(self, "accelerator", None)
        model = self.model
        device = accelerator.device if accelerator else next(model.parameters()).device
        return self._evaluate(model, device, accelerator)

    # ------------------------------------------------------------------ set-up
    def _prepare(self, accelerator):
        model = self.model
        optimizer = torch.optim.AdamW(
            param_groups(model, self.config.weight_decay), lr=self.config.lr,
            betas=(self.config.beta1, self.config.beta2), fused=True,
        )
        model, optimizer = accelerator.prepare(model, optimizer)
        self._prepared_model = model
        return model, optimizer

    def _open_run(self, accelerator, resumed):
        if not accelerator.is_main_process:
            return None
        if resumed is not None:
            resumed.reopen(from_step=self.state.step)
            # a resume may train further (a larger max_steps), on another device or number of
            # processes: the manifest says what ran last
            resumed.update_manifest(training=self.config.to_dict(), device=_device(accelerator))
            return resumed
        cfg = getattr(self.model, "config", None)
        return self.store.create(
            name=self.run_name, kind="train", config=cfg.to_dict() if cfg else None,
            params=_params_unlike_config(self.model, cfg),
            training=self.config.to_dict(), seed=self.config.seed,
            data={"kind": type(self.data).__name__, "fingerprint": self.data.fingerprint,
                  "seq_len": self.data.seq_len},
            device=_device(accelerator),
        )

    def _load_checkpoint(self, accelerator, run, exact: bool) -> list[str]:
        """Restore the latest usable checkpoint of ``run``; what made it inexact, if anything."""
        from llmlab.runs import RunStoreError

        try:
            folder, inexact = run.resumable_checkpoint(exact=exact)
        except RunStoreError as err:
            raise TrainingError(str(err)) from None
        if inexact:
            warnings.warn(f"run {run.id}: resuming inexactly from {folder.name} "
                          f"({'; '.join(inexact)}); the RNG or data order will differ from an "
                          "uninterrupted run.", stacklevel=3)
        check_resume_processes(self.config, folder, accelerator.num_processes)
        try:
            accelerator.load_state(str(folder / "accelerate"))
            self.state = TrainerState.load(folder, seed=self.config.seed if inexact else None)
        except Exception as err:  # torch, safetensors, pickle and json errors alike
            raise TrainingError(
                f"could not restore {folder} ({type(err).__name__}: {err}); the checkpoint's "
                "files passed their checksums, so they were written this way: resume from "
                "another run, or start a new one.") from err
        return inexact

    def _check_resumable(self, run) -> None:
        manifest = run.manifest
        cfg = getattr(self.model, "config", None)
        if cfg is not None and manifest.get("config") not in (None, cfg.to_dict()):
            raise TrainingError(
                f"run {run.id} was trained with another model config; resume it with the same "
                "ModelConfig (llmlab.ModelConfig.from_dict(run.manifest['config'])), or start a "
                "new run."
            )
        saved = dict(manifest.get("training") or {})
        mine = self.config.to_dict()
        diff = sorted(k for k in set(saved) | set(mine)
                      if k not in ("max_steps", *MACHINE_SETTINGS) and saved.get(k) != mine.get(k))
        if diff:
            raise TrainingError(
                f"run {run.id} was trained with other settings ({', '.join(diff)} differ); "
                "resume with the same TrainConfig (only max_steps and peak_flops may change), or "
                "start a new run."
            )
        if run.latest_checkpoint() is None:
            raise TrainingError(f"run {run.id} has no complete checkpoint to resume from; start "
                                "a new run.")

    def _loop(self, accelerator, model, optimizer) -> None:
        cfg = self.config
        self.step = self.state.step
        for cb in self.callbacks:
            cb.on_start(self)
        t_last, tokens_since = time.perf_counter(), 0
        while self.step < cfg.max_steps and not self._stop_requested:
            lr = lr_at(cfg, self.step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, tokens = self._train_step(accelerator, model, optimizer)
            self.step += 1
            self.state.step = self.step
            self.state.tokens += tokens
            tokens_since += tokens
            metrics = {"train/loss": loss, "lr": lr}
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                now = time.perf_counter()
                metrics.update(self._throughput(accelerator, tokens_since, now - t_last))
                t_last, tokens_since = now, 0
                self._log(accelerator, metrics)
            for cb in self.callbacks:
                cb.on_step(self, self.step, metrics)
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                self._eval_and_log(accelerator, model)
            interval = cfg.resolved("checkpoint_interval")
            if interval and (self.step % interval == 0 or self.step == cfg.max_steps):
                self.save_checkpoint()

    def _throughput(self, accelerator, tokens: int, seconds: float) -> dict[str, float]:
        """``tokens_per_s`` over the last logging interval, and ``mfu`` when the peak is known."""
        out = {"tokens_per_s": tokens / max(seconds, 1e-9)}
        per_token, peak = self._mfu_terms
        if per_token and peak:
            out["mfu"] = throughput.mfu(out["tokens_per_s"], per_token, peak,
                                        accelerator.num_processes)
        return out

    def _train_step(self, accelerator, model, optimizer) -> tuple[float, int]:
        cfg = self.config
        if not model.training:  # Module.train() walks every submodule: only when needed
            model.train()
        micro = cfg.batch_size // cfg.grad_accum_steps
        total = torch.zeros((), device=accelerator.device)
        tokens = 0
        for i in range(cfg.grad_accum_steps):
            batch = self._shard(self.data.get_batch("train", micro, self.state.generator),
                                accelerator)
            tokens += batch["input_ids"].numel() * accelerator.num_processes
            last = i == cfg.grad_accum_steps - 1
            ctx = accelerator.no_sync(model) if not last else contextlib.nullcontext()
            with ctx:
                loss = model(**batch).loss
                accelerator.backward(loss / cfg.grad_accum_steps)
            total += loss.detach()
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        _optimizer_step(accelerator, optimizer)
        optimizer.zero_grad(set_to_none=True)
        mean = accelerator.reduce(total / cfg.grad_accum_steps, reduction="mean").item()
        if not math.isfinite(mean):
            raise TrainingError(
                f"the training loss became {mean} at step {self.step + 1}. Try a lower learning "
                f"rate (now {optimizer.param_groups[0]['lr']:.2e}), gradient clipping "
                "(grad_clip=1.0), a longer warm-up, or mixed_precision='bf16' instead of 'fp16'."
            )
        return mean, tokens

    def _shard(self, batch: dict[str, torch.Tensor], accelerator) -> dict[str, torch.Tensor]:
        """This process's rows of a micro-batch every process drew identically."""
        n, rank = accelerator.num_processes, accelerator.process_index
        out = {}
        for key, value in batch.items():
            rows = value.shape[0] // n
            out[key] = value[rank * rows:(rank + 1) * rows].to(accelerator.device)
        return out

    def _eval_and_log(self, accelerator, model) -> None:
        metrics = self._evaluate(model, accelerator.device, accelerator)
        self._log(accelerator, metrics)
        for cb in self.callbacks:
            cb.on_eval(self, self.step, metrics)

    @torch.no_grad()
    def _evaluate(self, model, device, accelerator=None) -> dict[str, float]:
        cfg = self.config
        was_training = model.training
        model.eval()
        generator = torch.Generator().manual_seed(cfg.seed + 1)
        micro = cfg.batch_size // cfg.grad_accum_steps
        losses, correct, seen = [], 0.0, 0
        for _ in range(cfg.eval_batches):
            batch = self.data.get_batch("val", micro, generator)
            batch = (self._shard(batch, accelerator) if accelerator
                     else {k: v.to(device) for k, v in batch.items()})
            out = model(**batch)
            losses.append(out.loss.float())
            if out.logits.dim() == 2:  # a classifier: also count correct predictions
                correct += (out.logits.argmax(-1) == batch["targets"]).sum().item()
                seen += batch["targets"].numel()
        loss = torch.stack(losses).mean()
        if accelerator is not None:
            loss = accelerator.reduce(loss, reduction="mean")
        model.train(was_training)
        metrics = {"val/loss": loss.item(), "val/perplexity": math.exp(min(loss.item(), 50.0))}
        if seen:
            metrics["val/accuracy"] = correct / seen
        return metrics

    def _log(self, accelerator, metrics: dict[str, float]) -> None:
        if accelerator.is_main_process:
            self.run.log_metrics(metrics, step=self.step)
            if self.log_with:
                accelerator.log(metrics, step=self.step)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        """Save accelerate state + llmlab weights at the current step; keep the last K."""
        accelerator = self.accelerator
        final = self.run.checkpoint_dir(self.step) if accelerator.is_main_process else None
        final = _broadcast_path(final, accelerator)
        partial = final.with_name(final.name + ".partial")
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        with _quiet_tied_weight_warning():
            accelerator.save_state(str(partial / "accelerate"))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._write_llmlab_files(partial)
            # every metric logged so far is on disk before the checkpoint exists: a crash
            # after it leaves no step that a resume would not log again
            self.run.flush()
            checkpoints.seal(partial, self.step)
            if final.exists():
                checkpoints.prune(final)
            partial.rename(final)
            self._prune_checkpoints()
            self.run.update_manifest(last_checkpoint_step=self.step)
            for cb in self.callbacks:
                cb.on_checkpoint(self, self.step, final)
        accelerator.wait_for_everyone()
        return final

    def _write_llmlab_files(self, folder: Path) -> None:
        from llmlab.checkpoint import save

        unwrapped = self.accelerator.unwrap_model(self._prepared_model, keep_torch_compile=False)
        # sharded: the weights are accelerate's shards; llmlab.runs.consolidate merges them
        save(unwrapped, folder / "model", tokenizer=getattr(self.data, "tokenizer", None),
             weights=self.config.sharding is None)
        self.state.save(folder)

    def _prune_checkpoints(self) -> None:
        for _step, path in self.run.checkpoints()[: -self.config.keep_checkpoints]:
            checkpoints.prune(path)

    def _end(self, accelerator, status: str, error: str | None) -> None:
        if accelerator.is_main_process and self.run is not None:
            self.run.finish(status=status, error=error)
        if self.log_with:
            accelerator.end_training()
        for cb in self.callbacks:
            cb.on_end(self, self.run)


def _device(accelerator) -> str:
    """Where a run trains, as its manifest records it: ``"cpu x2"`` is two CPU processes."""
    return f"{accelerator.device} x{accelerator.num_processes}"


def _params_unlike_config(model: torch.nn.Module, cfg: Any) -> int | None:
    """The model's parameter count when its config would build another (pruned heads)."""
    count = getattr(model, "num_params", None)
    if cfg is None or count is None:
        return None
    n = count()
    return n if n != param_count(cfg) else None


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay matrices (2-D and up), not biases, norms or 1-D parameters.

    Embeddings are matrices and decay, as in nanoGPT; tied weights appear once.
    """
    decay, no_decay = [], []
    for param in model.parameters():  # parameters() yields each tied tensor once
        if param.requires_grad:
            (decay if param.dim() >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _broadcast_path(path: Path | None, accelerator) -> Path:
    if accelerator.num_processes == 1:
        return path
    from accelerate.utils import broadcast_object_list

    holder = [str(path) if path is not None else None]
    broadcast_object_list(holder, from_process=0)
    return Path(holder[0])


class _TiedWeightFilter(logging.Filter):
    """Drops accelerate's "Removed shared tensor" warning: tied embeddings are saved once by
    design and reload correctly (llmlab's own checkpoint files are the weights of record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in str(record.msg)


@contextlib.contextmanager
def _quiet_tied_weight_warning():
    logger = logging.getLogger("accelerate.utils.other")
    quiet = _TiedWeightFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)
