"""The accuracy-versus-cost explorer: train or evaluate several models alike, table, Pareto plot.

:func:`sweep` gives every entry the same data and budget and returns one polars table:
parameters, FLOPs per token, validation loss, training and generation tokens/s, peak memory
and wall time, with the run id each entry was recorded under. :func:`pareto_front` marks the
entries no other entry beats on both axes; :func:`plot_tradeoff` draws them with plotly.

>>> table = llmlab.sweep([cfg_a, cfg_b, llmlab.compress.quantize(model, "int8")],
...                      data, steps=500)  # doctest: +SKIP
>>> llmlab.plot_tradeoff(table, x="params", y="val_loss")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llmlab.errors import InputError

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import polars as pl
    import torch

COLUMNS = ("name", "kind", "run_id", "params", "flops_per_token", "val_loss",
           "train_tokens_per_s", "gen_tokens_per_s", "peak_memory_mb", "wall_s")
# which way is better, per column a user may plot
LOWER_IS_BETTER = {"params": True, "flops_per_token": True, "val_loss": True,
                   "train_tokens_per_s": False, "gen_tokens_per_s": False,
                   "peak_memory_mb": True, "wall_s": True}


def sweep(
    entries: Sequence[Any] | Mapping[str, Any],
    data: Any,
    *,
    steps: int = 200,
    batch_size: int = 8,
    lr: float = 1e-3,
    eval_batches: int = 8,
    gen_tokens: int = 32,
    seed: int = 0,
    run_dir: str | os.PathLike | None = None,
    progress: bool = False,
    **train_settings: Any,
) -> pl.DataFrame:
    """Train or evaluate each entry on ``data`` and return one row per entry (see COLUMNS).

    An entry is a ``ModelConfig`` (built with ``seed`` and trained for ``steps`` steps with
    :class:`llmlab.Trainer`) or a model (a trained or compressed one, evaluated as it is).
    Pass a dict to name the entries. Every entry is a run in the store at ``run_dir``
    (``kind`` "train" or "evaluate"); its row is also kept in the run's manifest under
    ``sweep``. Validation loss is the Trainer's (the same ``eval_batches`` fixed batches for
    every entry); generation is greedy, ``gen_tokens`` tokens from a fixed 8-token prompt.
    """
    import polars as pl

    named = _named_entries(entries)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InputError(f"steps={steps!r} must be a positive number of training steps.")
    rows = []
    for name, entry in named:
        settings = dict(batch_size=batch_size, lr=lr, eval_batches=eval_batches, seed=seed,
                        run_dir=run_dir, progress=progress, **train_settings)
        rows.append(_sweep_one(name, entry, data, steps=steps, gen_tokens=gen_tokens,
                               settings=settings))
    return pl.DataFrame(rows, schema={
        "name": pl.String, "kind": pl.String, "run_id": pl.String, "params": pl.Int64,
        "flops_per_token": pl.Int64, "val_loss": pl.Float64, "train_tokens_per_s": pl.Float64,
        "gen_tokens_per_s": pl.Float64, "peak_memory_mb": pl.Float64, "wall_s": pl.Float64})


def pareto_front(table: pl.DataFrame, x: str = "params", y: str = "val_loss") -> pl.DataFrame:
    """``table`` with a boolean ``pareto`` column: True for rows no other row beats on both
    ``x`` and ``y`` (better or equal on both, strictly better on one). Directions come from
    LOWER_IS_BETTER (lower loss, size and time are better; higher tokens/s is better).

    >>> import polars as pl
    >>> t = pl.DataFrame({"params": [1, 2, 3], "val_loss": [2.0, 1.0, 1.5]})
    >>> pareto_front(t)["pareto"].to_list()
    [True, True, False]
    """
    import polars as pl

    for column in (x, y):
        if column not in table.columns:
            raise InputError(f"the table has no column {column!r}; use one of "
                             f"{', '.join(table.columns)}.")
    sign = {c: 1.0 if LOWER_IS_BETTER.get(c, True) else -1.0 for c in (x, y)}
    points = [(sign[x] * a, sign[y] * b) if a is not None and b is not None else None
              for a, b in zip(table[x].to_list(), table[y].to_list())]
    front = [p is not None and not any(_dominates(q, p) for q in points if q is not None)
             for p in points]
    return table.with_columns(pl.Series("pareto", front, dtype=pl.Boolean))


def plot_tradeoff(table: pl.DataFrame, x: str = "params", y: str = "val_loss", *,
                  log_x: bool | None = None) -> go.Figure:
    """A plotly scatter of ``y`` against ``x``, one labelled point per entry, with the Pareto
    front drawn as a line through the entries nobody beats on both axes."""
    import plotly.graph_objects as go

    marked = pareto_front(table, x, y)
    if marked.is_empty():
        raise InputError("the table is empty; run llmlab.sweep([...], data) first.")
    names = marked["name"].to_list() if "name" in marked.columns else [
        str(i) for i in range(marked.height)]
    front = marked.filter(marked["pareto"]).sort(x)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=marked[x].to_list(), y=marked[y].to_list(), mode="markers+text", text=names,
        textposition="top center", name="entries",
        marker={"size": 11, "color": ["#d62728" if p else "#7f7f7f" for p in marked["pareto"]]},
        hovertemplate=f"%{{text}}<br>{x}=%{{x}}<br>{y}=%{{y}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=front[x].to_list(), y=front[y].to_list(), mode="lines",
                             name="Pareto front", line={"color": "#d62728", "dash": "dash"}))
    if log_x is None:
        values = [v for v in marked[x].to_list() if v]
        log_x = bool(values) and min(values) > 0 and max(values) / min(values) > 20
    fig.update_layout(title=f"{y} against {x}", xaxis_title=x, yaxis_title=y,
                      xaxis_type="log" if log_x else "linear", template="plotly_white",
                      height=420)
    return fig


def flops_per_token(model: torch.nn.Module, seq_len: int) -> int:
    """Forward FLOPs per token of ``model`` as built (after pruning), from ``llmlab.estimate``.

    The config's estimate, less 2 FLOPs per parameter pruned away and the attention term of
    the heads removed.
    """
    from llmlab.compress import model_size
    from llmlab.compress.heads import attention_layers

    cfg = model.config
    est = cfg.estimate(seq_len=seq_len)
    removed_params = max(est.params - model_size(model).params, 0)
    full_width = cfg.n_head * cfg.head_dim
    removed_width = sum(full_width - layer.n_head * layer.head_dim
                        for layer in attention_layers(model).values())
    return est.flops_per_token_forward - 2 * removed_params - 4 * removed_width * seq_len


# --------------------------------------------------------------------------- one entry
def _named_entries(entries: Any) -> list[tuple[str, Any]]:
    from torch import nn

    from llmlab.config import ModelConfig

    if isinstance(entries, Mapping):
        pairs = [(str(k), v) for k, v in entries.items()]
    elif isinstance(entries, Sequence) and not isinstance(entries, str):
        pairs = [(str(i), e) for i, e in enumerate(entries)]
    else:
        raise InputError("sweep takes a list of ModelConfigs or models (or a dict name -> "
                         f"entry), got {type(entries).__name__}.")
    if not pairs:
        raise InputError("sweep got no entries; pass at least one ModelConfig or model.")
    for name, entry in pairs:
        if not isinstance(entry, (ModelConfig, nn.Module)):
            raise InputError(f"sweep entry {name!r} is a {type(entry).__name__}; pass a "
                             "ModelConfig (trained from scratch) or a model (evaluated).")
    if isinstance(entries, Mapping):
        return pairs
    named: list[tuple[str, Any]] = []
    for i, (_, entry) in enumerate(pairs):
        name = _default_name(entry)
        named.append((name if name not in dict(named) else f"{name}-{i}", entry))
    return named


def _default_name(entry: Any) -> str:
    """A config's name (or its shape); a model's shape and quantization."""
    from llmlab.compress import quantized_mode
    from llmlab.config import ModelConfig

    cfg = entry if isinstance(entry, ModelConfig) else entry.config
    name = cfg.name or f"{cfg.family}-L{cfg.n_layer}-H{cfg.n_head}-d{cfg.d_model}"
    if isinstance(entry, ModelConfig):
        return name
    mode = quantized_mode(entry)
    return f"{name} model" + (f" {mode}" if mode else "")


def _sweep_one(name: str, entry: Any, data: Any, *, steps: int, gen_tokens: int,
               settings: dict[str, Any]) -> dict[str, Any]:
    from llmlab.config import ModelConfig
    from llmlab.models import build_model
    from llmlab.train import Trainer

    run_dir, progress = settings.pop("run_dir"), settings.pop("progress")
    start = time.perf_counter()
    with _peak_memory() as peak:
        if isinstance(entry, ModelConfig):
            model = build_model(entry, seed=settings["seed"])
            trainer = Trainer(model, data, max_steps=steps, run_dir=run_dir, run_name=name,
                              progress=progress, **{"eval_interval": steps, **settings})
            run = trainer.fit()
            metrics = run.metrics
            val_loss = metrics["val/loss"].drop_nulls()[-1]
            train_speed = metrics["tokens_per_s"].drop_nulls().mean()
            kind = "train"
        else:
            model = entry
            trainer = Trainer(model, data, run_dir=run_dir, progress=False, **settings)
            val_loss = trainer.evaluate()["val/loss"]
            run = trainer.store.create(
                name=name, kind="evaluate", config=model.config.to_dict(), seed=settings["seed"],
                data={"kind": type(data).__name__, "fingerprint": data.fingerprint,
                      "seq_len": data.seq_len})
            train_speed, kind = None, "evaluate"
        gen_speed = _generation_speed(model, data, gen_tokens)
    row = {"name": name, "kind": kind, "run_id": run.id,
           "params": _params(model), "flops_per_token": flops_per_token(model, data.seq_len),
           "val_loss": float(val_loss), "train_tokens_per_s": train_speed,
           "gen_tokens_per_s": gen_speed, "peak_memory_mb": peak(),
           "wall_s": time.perf_counter() - start}
    run.update_manifest(sweep=row)
    run.log_metrics({"sweep/val_loss": row["val_loss"], "sweep/gen_tokens_per_s": gen_speed},
                    step=steps if kind == "train" else 0)
    if kind == "evaluate":
        run.finish("finished")
    else:
        run.flush()
    return row


def _params(model: torch.nn.Module) -> int:
    from llmlab.compress import model_size

    return model_size(model).params


def _generation_speed(model: torch.nn.Module, data: Any, gen_tokens: int) -> float | None:
    """Greedy tokens/s from a fixed 8-token validation prompt (None for non-GPT models)."""
    import torch

    from llmlab.generation import generate

    if model.config.family != "gpt" or model.config.n_labels or gen_tokens < 1:
        return None
    prompt = data.get_batch("val", 1, torch.Generator().manual_seed(0))["input_ids"][0, :8]
    new = min(gen_tokens, model.config.context_length - len(prompt))
    model.eval()
    generate(model, None, prompt.tolist(), max_new_tokens=2)  # warm-up
    start = time.perf_counter()
    out = generate(model, None, prompt.tolist(), max_new_tokens=new)
    return len(out.token_ids) / max(time.perf_counter() - start, 1e-9)


@contextmanager
def _peak_memory() -> Iterator[Any]:
    """Peak resident memory (MB) while the block runs: the CUDA allocator's peak on a GPU,
    else the process RSS sampled every 5 ms (Linux /proc), else the process-lifetime peak."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        yield lambda: torch.cuda.max_memory_allocated() / 2**20
        return
    peak = [_rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_mb())


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])
