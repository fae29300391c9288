"""Calibration on real data (SST-2) and the speed of temperature scaling, side by side.

Three cases, each printing JSON lines (``ratio = llmlab / peer``):

- ``finetune``: a small GPT classifier trained (over-trained, so over-confident) on SST-2
  train, temperature-scaled on dev, evaluated on test. The "peer" is the same model before
  calibration: ECE after / before should be <= 0.5, accuracy after / before = 1. A second line
  compares llmlab's ECE after scaling with scikit-learn's temperature scaling on the same
  logits.
- ``prompted``: a small causal LM trained on SST-2 train reviews written as prompts
  ("Review: ...\nSentiment: positive"), then used few-shot on 500 test reviews with 0, 1 and 4
  demonstrations (5 demonstration sets each); mean accuracy with contextual / domain / batch
  calibration against no calibration. Trained from scratch for a few CPU minutes, a 2-layer
  LM barely learns sentiment (its next-token loss is spent on the reviews' words), so by
  default its trunk is first trained as a sentiment classifier on the same train split and
  then trained as a language model on the prompts (``--lm-init scratch`` skips that).
- ``speed``: fitting temperature scaling on 100,000 x 100 logits, llmlab against
  ``sklearn.calibration.CalibratedClassifierCV(method="temperature")``.
- ``table``: every prompted-LM calibration method (``llmlab.prompting.ALL_METHODS``) on
  SST-2, TREC and AG News, ``--shots`` 4 demonstrations, ``--seeds`` 5 demonstration sets,
  ``--texts`` 300 test texts per data set: accuracy, macro-F1, ECE and smECE, mean ± std over
  the sets (``--table PATH`` writes the markdown). The model is the best the machine has: a
  cached real LM when the Hugging Face cache holds one (found with
  ``huggingface_hub.scan_cache_dir``, never downloaded), else a small LM trained here per data
  set with the ``prompted`` case's recipe (cached in ``--cache-dir``); the table says which.
  JSON lines: the best method's accuracy / macro-F1 / smECE against no calibration.
- ``fit_time``: seconds to fit each method on 1,000 texts' label log-probabilities (hidden
  states of width 128 for hidden-state calibration), target < 1 s each; and generative
  calibration's sampling cost, seconds per text the LM writes.

    python benchmarks/calibration.py                    # all cases (~30 CPU minutes)
    python benchmarks/calibration.py --case speed --quick
    python benchmarks/calibration.py --case table --table calibration-table.md
    python benchmarks/calibration.py --case table --seeds 2 --texts 100 --datasets sst2

SST-2, TREC and AG News are read from ``$LLMLAB_DATA_DIR`` (default: ``shared/data`` beside
the repository).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    emit,
    environment,
    iterations,
    log,
    parse_args,
    time_call,
    time_pair,
)

import llmlab  # noqa: E402
from llmlab import metrics  # noqa: E402
from llmlab.calibrate import TemperatureScaling  # noqa: E402
from llmlab.data import CausalLMData, ClassificationData, load_classification  # noqa: E402
from llmlab.prompting import PromptClassifier, sample_demonstrations  # noqa: E402

BENCH = "calibration"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_dir() -> Path:
    if not os.environ.get("LLMLAB_DATA_DIR"):
        os.environ["LLMLAB_DATA_DIR"] = str(DEFAULT_DATA)
    return Path(os.environ["LLMLAB_DATA_DIR"])


def sst2(split: str):
    return load_classification("sst2", split)


@torch.no_grad()
def classifier_logits(model, data: ClassificationData, split: str) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    logits, labels = [], []
    for batch in data.iter_batches(split, 256):
        logits.append(model(batch["input_ids"], attention_mask=batch["attention_mask"]).logits)
        labels.append(batch["targets"])
    return torch.cat(logits).double().numpy(), torch.cat(labels).numpy()


def summary(name: str, scores, labels) -> dict[str, float]:
    wide = metrics.evaluate(scores, labels, wide=True)
    row = {"accuracy": wide["accuracy"].item(), "macro_f1": wide["f1_macro"].item(),
           "ece": wide["ece_top_label_equal_width15"].item(), "nll": wide["nll"].item()}
    log(f"  {name:<22} " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
    return row


# --------------------------------------------------------------------------- fine-tuned model
def case_finetune(args) -> None:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    train, dev, test = sst2("train"), sst2("dev"), sst2("test")
    tok = llmlab.BPETokenizer.train(train.texts, vocab_size=2000)
    seq_len = 64
    data = ClassificationData.from_splits(train, dev, tok, seq_len=seq_len)
    test_data = ClassificationData.from_splits(test, test, tok, seq_len=seq_len)
    cfg = llmlab.ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=seq_len,
                             n_layer=2, n_head=4, d_model=128, n_labels=2, dropout=0.1)
    model = llmlab.build_model(cfg, seed=0)
    steps = 200 if args.quick else 600  # ~3 epochs: over-trained on purpose (over-confident)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        llmlab.Trainer(model, data, max_steps=steps, batch_size=32, lr=1e-3, warmup_steps=50,
                       eval_interval=steps, eval_batches=5, run_dir=runs, progress=False).fit()
    log(f"finetune: {cfg.estimate().params / 1e6:.2f}M-parameter GPT classifier, {steps} steps "
        f"in {time.perf_counter() - start:.0f} s")
    dev_logits, dev_labels = classifier_logits(model, data, "val")
    test_logits, test_labels = classifier_logits(model, test_data, "val")
    ts = TemperatureScaling().fit(dev_logits, dev_labels)
    log(f"  temperature fitted on dev ({len(dev_labels)} reviews): T = {ts.temperature:.3f}")
    before = summary("test, uncalibrated", test_logits, test_labels)
    after = summary("test, llmlab TS", ts.transform(test_logits), test_labels)

    class LogitsAsFeatures(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            return self

        def decision_function(self, X):  # scikit-learn wants binary scores as log-odds [N]
            return X[:, 1] - X[:, 0]

        def predict(self, X):
            return X.argmax(1)

    peer = CalibratedClassifierCV(FrozenEstimator(LogitsAsFeatures().fit(dev_logits, dev_labels)),
                                  method="temperature").fit(dev_logits, dev_labels)
    sk = summary("test, sklearn TS", peer.predict_proba(test_logits), test_labels)
    emit(BENCH, "finetune_sst2_ece_after_vs_before", "ece", after["ece"], before["ece"],
         "uncalibrated", higher_is_better=False, target=0.5, digits=4)
    emit(BENCH, "finetune_sst2_accuracy_after_vs_before", "accuracy", after["accuracy"],
         before["accuracy"], "uncalibrated", higher_is_better=True, target=1.0, digits=4)
    emit(BENCH, "finetune_sst2_ece_after_ts", "ece", after["ece"], sk["ece"],
         "sklearn CalibratedClassifierCV(method='temperature')", higher_is_better=False,
         target=1.01, digits=4)


# --------------------------------------------------------------------------- prompted LM
TEMPLATE = "Review: {text}\nSentiment: {label}\n"
WORDS = {"negative": 0, "positive": 1}


def prompt_corpus(train, seed: int, epochs: int, template: str = TEMPLATE,
                  words: list[str] | None = None) -> str:
    """The train texts as labelled prompts (label ``k`` written as ``words[k]``, default the
    label names), in a new random order each epoch."""
    rng = random.Random(seed)
    words = words or train.label_names
    docs = []
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        docs += [template.format(text=train.texts[i], label=words[train.labels[i]])
                 + "\n" for i in order]
    return "".join(docs)


def train_prompted_lm(args, train, dev, tok, corpus: str, *, n_labels: int = 2,
                      classifier_steps: int | None = None, lm_steps: int | None = None,
                      seq_len: int = 256):
    """A small causal LM trained on the prompt corpus (by default warm-started from the trunk
    of a classifier trained on the same train split; see the module docstring), on windows
    of ``seq_len`` tokens (``16 * 256`` tokens a step whatever the window)."""
    batch = max(1, 16 * 256 // seq_len)
    base = dict(family="gpt", vocab_size=tok.vocab_size, context_length=seq_len, n_layer=2,
                n_head=4, d_model=128)
    lm = llmlab.build_model(llmlab.ModelConfig(**base, dropout=0.0), seed=0)
    quick = args.quick
    with tempfile.TemporaryDirectory() as runs:
        if args.lm_init == "classifier":
            start = time.perf_counter()
            trunk = llmlab.build_model(llmlab.ModelConfig(**base, n_labels=n_labels, dropout=0.1),
                                       seed=0)
            steps = classifier_steps or (150 if quick else 300)
            llmlab.Trainer(trunk, ClassificationData.from_splits(train, dev, tok, seq_len=64),
                           max_steps=steps, batch_size=32, lr=1e-3, warmup_steps=30,
                           eval_interval=steps, eval_batches=5, run_dir=runs,
                           progress=False).fit()
            state = {k: v for k, v in trunk.state_dict().items() if not k.startswith("classifier")}
            missing = lm.load_state_dict(state, strict=False).missing_keys
            assert missing == ["lm_head.weight"], missing  # tied to the token embedding
            log(f"prompted: trunk warm-started from a classifier trained {steps} steps "
                f"({time.perf_counter() - start:.0f} s)")
        start = time.perf_counter()
        steps = lm_steps or (100 if quick else 300)
        data = CausalLMData.from_text(corpus, tok, seq_len=seq_len, val_fraction=0.02)
        run = llmlab.Trainer(lm, data, max_steps=steps, batch_size=batch, lr=1e-3, warmup_steps=20,
                             eval_interval=steps, eval_batches=10, run_dir=runs,
                             progress=False).fit()
        val = run.metrics["val/loss"].drop_nulls()[-1]
    log(f"prompted: {lm.num_params() / 1e6:.2f}M-parameter GPT LM ({args.lm_init} init), "
        f"{steps} steps of {batch * seq_len} tokens in {time.perf_counter() - start:.0f} s "
        f"(val loss {val:.3f})")
    return lm.eval()


def std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def case_prompted(args) -> None:
    train, dev, test = sst2("train"), sst2("dev"), sst2("test")
    corpus = prompt_corpus(train, seed=0, epochs=3)
    tok = llmlab.BPETokenizer.train(corpus, vocab_size=2000)
    model = train_prompted_lm(args, train, dev, tok, corpus)
    rng = random.Random(0)
    n_test = 200 if args.quick else 500
    rows = rng.sample(range(len(test)), n_test)
    texts, labels = [test.texts[i] for i in rows], np.array([test.labels[i] for i in rows])
    # demonstrations: train reviews of <= 30 words, so that 4 of them and a test review fit
    keep = [i for i, t in enumerate(train.texts) if len(t.split()) <= 30]
    pool = llmlab.data.LabelledTexts([train.texts[i] for i in keep],
                                     [train.labels[i] for i in keep], train.label_names)
    sets = 5
    methods = ("none", "contextual", "domain", "batch")
    for k in (0, 1, 4):
        start = time.perf_counter()
        runs = []
        for seed in range(1 if k == 0 else sets):  # without demonstrations every set is alike
            clf = PromptClassifier(model, tok, TEMPLATE, WORDS, separator="\n", batch_size=32,
                                   demonstrations=sample_demonstrations(pool, k, seed=seed))
            runs.append(clf.calibration_report(texts, labels, methods=methods))
        log(f"  k={k}: {len(runs)} demonstration set(s) x {n_test} test reviews in "
            f"{time.perf_counter() - start:.0f} s (mean ± std over the sets)")
        table = {m: {c: [r.filter(r["method"] == m)[c].item() for r in runs]
                     for c in ("accuracy", "macro_f1", "ece")} for m in methods}
        for m in methods:
            log(f"    {m:<11} " + "  ".join(
                f"{c} {statistics.mean(v):.3f} ± {std(v):.3f}"
                for c, v in table[m].items()))
        base = statistics.mean(table["none"]["accuracy"])
        for m in methods[1:]:
            emit(BENCH, f"prompted_sst2_k{k}_{m}_accuracy", "accuracy",
                 statistics.mean(table[m]["accuracy"]), base, "uncalibrated",
                 higher_is_better=True, target=1.0, digits=4)


# --------------------------------------------------------------------------- fitting speed
def case_speed(args) -> None:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    n, k = 100_000, 100
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    z = 3.0 * rng.normal(size=(n, k))
    z[np.arange(n), y] += 9.0  # calibrated logits (T = 1) of a 68%-accurate model ...
    z *= 2.0  # ... made over-confident: the fitted temperature is about 2

    class LogitsAsFeatures(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.arange(k)
            return self

        def decision_function(self, X):
            return X

        def predict(self, X):
            return X.argmax(1)

    frozen = FrozenEstimator(LogitsAsFeatures().fit(z, y))
    found = {}

    def ours():
        found["llmlab"] = TemperatureScaling().fit(z, y).temperature

    def peer():
        fitted = CalibratedClassifierCV(frozen, method="temperature").fit(z, y)
        found["sklearn"] = 1 / float(fitted.calibrated_classifiers_[0].calibrators[0].beta_)

    iters, warmup = iterations(args, quick=2, full=7, warmup=1)
    a, b = time_pair(ours, peer, iters=iters, warmup=warmup)
    log(f"speed: temperature fit on {n} x {k} logits: llmlab {a}; sklearn {b}")
    log(f"  temperatures: llmlab {found['llmlab']:.6f}, sklearn {found['sklearn']:.6f}")
    emit(BENCH, "temperature_fit_100k_x_100", "ms", a.median, b.median,
         "sklearn CalibratedClassifierCV(method='temperature')", higher_is_better=False,
         target=1.0, digits=1)
    lbfgs = {}

    def ours_lbfgs():
        lbfgs["T"] = TemperatureScaling(solver="lbfgs").fit(z, y).temperature

    a, b = time_pair(ours_lbfgs, peer, iters=max(1, iters // 2), warmup=0)
    log(f"  llmlab solver='lbfgs' {a} (T {lbfgs['T']:.6f})")
    emit(BENCH, "temperature_fit_100k_x_100_lbfgs", "ms", a.median, b.median,
         "sklearn CalibratedClassifierCV(method='temperature')", higher_is_better=False,
         target=1.0, digits=1)


# --------------------------------------------------------------------------- the method table
@dataclass(frozen=True)
class Task:
    """One data set of the table: its prompt, label words and where its splits come from."""

    name: str
    title: str
    template: str
    words: tuple[str, ...]
    #: the trained LM's context: 4 AG News demonstrations and an article need 512 tokens
    context: int = 256


TASKS = {
    "sst2": Task("sst2", "SST-2", TEMPLATE, ("negative", "positive")),
    "trec": Task("trec", "TREC", "Question: {text}\nAnswer type: {label}\n",
                 ("abbreviation", "description", "entity", "person", "location", "number")),
    "agnews": Task("agnews", "AG News", "Article: {text}\nTopic: {label}\n",
                   ("world", "sports", "business", "science"), context=512),
}
#: the columns of the table (calibration_report's names) and how they are printed
TABLE_METRICS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "ece": "ECE",
                 "smece": "smECE"}


def task_splits(task: Task) -> tuple[Any, Any]:
    """(train, test) ``LabelledTexts``. AG News has only a test split here: a seeded quarter
    of it is the test pool, the rest trains the LM and gives the demonstrations."""
    from llmlab.data import LabelledTexts

    if task.name != "agnews":
        test = load_classification(task.name, "test")
        return load_classification(task.name, "train"), test
    full = load_classification("agnews", "test")
    order = list(range(len(full)))
    random.Random(0).shuffle(order)
    cut = len(order) // 4

    def part(rows: list[int]) -> Any:
        return LabelledTexts([full.texts[i] for i in rows], [full.labels[i] for i in rows],
                             full.label_names)

    return part(order[cut:]), part(order[:cut])


def cache_root(args) -> Path:
    """Where trained benchmark models are kept between runs."""
    if getattr(args, "cache_dir", None):
        return Path(args.cache_dir)
    root = os.environ.get("LLMLAB_CACHE_DIR") or Path.home() / ".cache" / "llmlab"
    return Path(root) / "bench-calibration"


def cached_real_lm(max_bytes: float = 1.5e9, cache_dir: Path | None = None,
                   ) -> tuple[str, Path] | None:
    """The largest causal LM in the Hugging Face cache that llmlab loads (never downloads)
    and that is at most ``max_bytes`` on disk (bigger ones would take hours on a CPU here):
    ``(repo id, snapshot folder)``, or None when the cache holds none.

    >>> cached_real_lm()                           # doctest: +SKIP
    ('HuggingFaceTB/SmolLM2-360M', PosixPath('.../snapshots/...'))
    """
    import json

    try:
        from huggingface_hub import scan_cache_dir

        repos = scan_cache_dir(cache_dir).repos
    except Exception:  # no cache folder at all: nothing cached
        return None
    found = []
    for repo in repos:
        if repo.repo_type != "model" or repo.size_on_disk > max_bytes:
            continue
        for rev in repo.revisions:
            config = Path(rev.snapshot_path) / "config.json"
            weights = list(Path(rev.snapshot_path).glob("*.safetensors"))
            if not (config.is_file() and weights):
                continue
            arch = json.loads(config.read_text()).get("architectures") or [""]
            if arch[0].endswith(("ForCausalLM", "LMHeadModel")):  # GPT2LMHeadModel too
                found.append((repo.size_on_disk, repo.repo_id, Path(rev.snapshot_path)))
    for _, repo_id, path in sorted(found, reverse=True):
        try:
            llmlab.load(path)
        except Exception as err:  # a family llmlab does not import: try the next one
            log(f"  cached {repo_id} does not load in llmlab ({err}); skipped")
            continue
        return repo_id, path
    return None


def table_model(args, task: Task) -> tuple[Any, Any, str]:
    """(model, tokenizer, description) for one task: ``--model`` (a folder), the largest cached
    real LM (``--model auto`` when there is one), else a small LM trained here for the task
    (cached under ``--cache-dir``)."""
    choice = args.model
    if choice not in ("auto", "trained"):
        model, tok = llmlab.load(choice)
        return model.eval(), tok, f"{choice} (given with --model)"
    if choice == "auto":
        real = cached_real_lm()
        if real is not None:
            model, tok = llmlab.load(real[1])
            return model.eval(), tok, f"{real[0]} (cached in the Hugging Face cache)"
    return trained_task_lm(args, task)


def trained_task_lm(args, task: Task) -> tuple[Any, Any, str]:
    """A 2-layer GPT LM trained on ``task``'s train texts written as prompts (the
    ``prompted`` case's recipe), cached in ``cache_root(args)``."""
    steps = (150, 100) if args.quick else (300, 300)
    ctx = "" if task.context == 256 else f"-ctx{task.context}"
    folder = cache_root(args) / f"{task.name}-{args.lm_init}-{steps[0]}-{steps[1]}{ctx}-v1"
    what = (f"llmlab GPT LM trained here on {task.title} prompts (2 layers, width 128, "
            f"context {task.context}, {args.lm_init} init, {steps[0]} + {steps[1]} steps)")
    if (folder / "model.safetensors").exists():
        log(f"table: reusing the {task.title} LM in {folder}")
        model, tok = llmlab.load(folder)
        return model.eval(), tok, what
    train, _ = task_splits(task)
    dev_rows = random.Random(1).sample(range(len(train)), min(500, len(train) // 10))
    dev = llmlab.data.LabelledTexts([train.texts[i] for i in dev_rows],
                                    [train.labels[i] for i in dev_rows], train.label_names)
    corpus = prompt_corpus(train, seed=0, epochs=3, template=task.template,
                           words=list(task.words))
    tok = llmlab.BPETokenizer.train(corpus, vocab_size=2000)
    model = train_prompted_lm(args, train, dev, tok, corpus, n_labels=len(task.words),
                              classifier_steps=steps[0], lm_steps=steps[1],
                              seq_len=task.context)
    llmlab.save(model, folder, tokenizer=tok)
    return model, tok, what


def table_inputs(task: Task, train: Any, test: Any, clf_of: Any, *, n_texts: int, shots: int,
                 seeds: int, context: int) -> tuple[list[str], np.ndarray, list[list]]:
    """(test texts, labels, one demonstration set per seed). Demonstrations: ``shots``
    train texts of <= 30 words drawn with ``sample_demonstrations(pool, shots, seed)``; test
    texts: a seeded sample of ``n_texts`` among those whose prompt fits the model's context
    under every demonstration set."""
    keep = [i for i, t in enumerate(train.texts) if len(t.split()) <= 30]
    pool = llmlab.data.LabelledTexts([train.texts[i] for i in keep],
                                     [train.labels[i] for i in keep], train.label_names)
    sets = [sample_demonstrations(pool, shots, seed=seed) for seed in range(seeds)]
    tok = clf_of(sets[0]).tokenizer
    block = max(len(tok.encode(clf_of(d).prompt(""))) for d in sets)
    label = max(len(tok.encode(" " + w)) for w in task.words)
    fits = [i for i, t in enumerate(test.texts)
            if block + len(tok.encode(t)) + label + 8 <= context]
    if not fits:
        raise ValueError(f"no {task.title} test text fits a context of {context} tokens after "
                         f"{shots} demonstrations ({block} tokens); use fewer --shots or a "
                         "model with a longer context")
    rows = random.Random(0).sample(fits, min(n_texts, len(fits)))
    return [test.texts[i] for i in rows], np.array([test.labels[i] for i in rows]), sets


def method_runs(clf_of: Any, texts: list[str], labels: np.ndarray, sets: list[list], *,
                methods: Sequence[str], n_boot: int) -> dict[str, dict[str, list[float]]]:
    """``{method: {metric: [value per demonstration set]}}`` from one
    ``calibration_report(texts, labels, methods=methods)`` per set (supervised methods
    cross-fitted on 5 folds of the texts)."""
    import warnings

    from llmlab.errors import InputError

    runs: dict[str, dict[str, list[float]]] = {m: {c: [] for c in TABLE_METRICS}
                                               for m in methods}
    for seed, demos in enumerate(sets):
        clf = clf_of(demos)

        def report(which: list[str], clf=clf, seed=seed) -> Any:
            return clf.calibration_report(texts, labels, methods=which, n_boot=n_boot,
                                          seed=seed)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rows = list(report(list(methods)).iter_rows(named=True))
            except InputError:  # one method cannot be fit here: the others still count
                rows = []
                for method in methods:
                    try:
                        rows += list(report([method]).iter_rows(named=True))
                    except InputError as err:
                        log(f"    seed {seed}: {method} failed: {err}")
                        rows.append({"method": method, **dict.fromkeys(TABLE_METRICS,
                                                                       float("nan"))})
        for w in {str(w.message) for w in caught}:
            log(f"    seed {seed}: warning: {w[:160]}")
        for row in rows:
            for c in TABLE_METRICS:
                runs[row["method"]][c].append(row[c])
    return runs


def summarise(runs: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """One row per method: ``method`` and ``{metric}_mean`` / ``{metric}_std`` (ddof 1)."""
    rows = []
    for method, values in runs.items():
        row: dict[str, Any] = {"method": method}
        for c, v in values.items():
            ok = [x for x in v if not np.isnan(x)]  # a failed fit counts as missing
            row[f"{c}_mean"] = statistics.mean(ok) if ok else float("nan")
            row[f"{c}_std"] = std(ok) if ok else float("nan")
        row["runs"] = min(sum(not np.isnan(x) for x in v) for v in values.values())
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`summarise` as a markdown table, mean ± std, the best mean in bold."""
    best = {c: (max if c in ("accuracy", "macro_f1") else min)(
        (r[f"{c}_mean"] for r in rows if not np.isnan(r[f"{c}_mean"])), default=None)
        for c in TABLE_METRICS}
    max_runs = max((r.get("runs") or 0) for r in rows)
    lines = ["| method | " + " | ".join(TABLE_METRICS.values()) + " |",
             "|---|" + "---|" * len(TABLE_METRICS)]
    for r in rows:
        cells = []
        for c in TABLE_METRICS:
            if np.isnan(r[f"{c}_mean"]):
                cells.append("failed")
                continue
            cell = f"{r[f'{c}_mean']:.3f} ± {r[f'{c}_std']:.3f}"
            cells.append(f"**{cell}**" if r[f"{c}_mean"] == best[c] else cell)
        runs = r.get("runs")
        method = r["method"] if runs in (None, max_runs) else f"{r['method']} ({runs} runs)"
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def case_table(args) -> None:
    from llmlab.prompting import ALL_METHODS

    methods = list(ALL_METHODS) if args.methods == "all" else args.methods.split(",")
    out = [f"Calibration methods, {args.shots} demonstrations, mean ± std over {args.seeds} "
           f"demonstration sets; {args.texts} test texts per data set; "
           f"torch threads {torch.get_num_threads()}.", ""]
    for name in args.datasets.split(","):
        task = TASKS[name]
        start = time.perf_counter()
        model, tok, what = table_model(args, task)
        train, test = task_splits(task)

        def clf_of(demos: list, model=model, tok=tok, task=task) -> PromptClassifier:
            return PromptClassifier(model, tok, task.template, list(task.words), separator="\n",
                                    batch_size=32, demonstrations=demos)

        texts, labels, sets = table_inputs(task, train, test, clf_of, n_texts=args.texts,
                                           shots=args.shots, seeds=args.seeds,
                                           context=model.config.context_length)
        log(f"table {task.title}: {what}; {len(texts)} test texts, {len(sets)} sets of "
            f"{args.shots} demonstrations")
        rows = summarise(method_runs(clf_of, texts, labels, sets, methods=methods,
                                    n_boot=args.n_boot))
        table = markdown_table(rows)
        log(table)
        log(f"  [{task.title}] {time.perf_counter() - start:.0f} s")
        out += [f"### {task.title} ({len(texts)} test texts; model: {what})", "", table, ""]
        emit_table_rows(task, rows)
    if args.table:
        Path(args.table).write_text("\n".join(out), encoding="utf-8")
        log(f"table written to {args.table}")


def emit_table_rows(task: Task, rows: list[dict[str, Any]]) -> None:
    """JSON lines: the best method's accuracy and macro-F1 (and the lowest smECE) against
    no calibration."""
    by = {r["method"]: r for r in rows}
    if "none" not in by:
        return
    none = by["none"]
    for metric, higher in (("accuracy", True), ("macro_f1", True), ("smece", False)):
        fitted = [r for r in rows if not np.isnan(r[f"{metric}_mean"])]
        if not fitted or np.isnan(none[f"{metric}_mean"]):
            continue
        pick = (max if higher else min)(fitted, key=lambda r: r[f"{metric}_mean"])
        emit(BENCH, f"table_{task.name}_best_{metric}_{pick['method']}", metric,
             pick[f"{metric}_mean"], none[f"{metric}_mean"], "none (uncalibrated)",
             higher_is_better=higher, target=1.0, digits=4)


# --------------------------------------------------------------------------- fitting time
def synthetic_log_probs(n: int, k: int, width: int, seed: int = 0,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label log-probs [n, k] of a biased, 60%-ish accurate model, labels [n], hidden
    states [n, width] with a class signal): stand-ins with the shapes a prompt gives."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 1.2
    z[:, 0] += 0.8  # a label bias, the kind the prompted methods remove
    lp = z - np.log(np.exp(z).sum(1, keepdims=True))
    hidden = rng.normal(size=(n, width))
    hidden[:, :k] += 2.0 * np.eye(k)[y]
    return lp, y, hidden


def case_fit_time(args) -> None:
    from llmlab.calibrate.prompted import inputs_of, make_calibrator
    from llmlab.prompting import ALL_METHODS

    n, k = 1000, 4
    lp, y, hidden = synthetic_log_probs(n, k, 128)
    iters = 3 if args.quick else 7
    for method in ALL_METHODS:
        cal = make_calibrator(method, k)
        needs = inputs_of(cal) in ("labelled", "hidden")
        x = hidden if inputs_of(cal) == "hidden" else lp

        def fit(method=method, x=x, needs=needs) -> None:
            make_calibrator(method, k).fit(x, y if needs else None, kind="logits")

        fit()  # warm-up
        samples = [time_call(fit) / 1e3 for _ in range(iters)]
        seconds = statistics.median(samples)
        log(f"fit time {method:<13} {seconds * 1e3:9.2f} ms (median of {iters}, max "
            f"{max(samples) * 1e3:.2f} ms)")
        emit(BENCH, f"fit_1000_{method}", "ms", seconds * 1e3, 1000.0, "target: 1 s",
             higher_is_better=False, target=1.0, digits=3)
    sampling_cost(args)


def sampling_cost(args) -> None:
    """Generative calibration's cost: seconds per text the LM samples (after 4
    demonstrations, up to 32 new tokens, cut at the line's end)."""
    task = TASKS["sst2"]
    model, tok, what = table_model(args, task)
    train, _ = task_splits(task)
    keep = [(t, y) for t, y in zip(train.texts, train.labels) if len(t.split()) <= 30]
    clf = PromptClassifier(model, tok, task.template, list(task.words), separator="\n",
                           demonstrations=sample_demonstrations(keep, 4, seed=0))
    n = 8 if args.quick else 32
    clf.sample_texts(2, seed=100)  # warm-up
    start = time.perf_counter()
    clf.sample_texts(n, seed=0)
    per_text = (time.perf_counter() - start) / n
    log(f"generative calibration: sampling {n} texts on {what}: {per_text * 1e3:.1f} ms per "
        f"text (the default n_samples=20 costs {20 * per_text:.2f} s)")
    emit(BENCH, "generative_sampling_per_text", "ms/text", per_text * 1e3, 1000.0,
         "informational (1 s a text)", higher_is_better=False, target=1.0, digits=2)


CASES = {"finetune": case_finetune, "prompted": case_prompted, "speed": case_speed,
         "table": case_table, "fit_time": case_fit_time}


def main(argv: list[str] | None = None) -> None:
    def extra(parser):
        parser.add_argument("--case", choices=[*CASES, "all"], default="all")
        parser.add_argument("--lm-init", choices=["classifier", "scratch"], default="classifier",
                            help="prompted case: warm-start the LM's trunk from a sentiment "
                                 "classifier (default) or train it from scratch")
        parser.add_argument("--datasets", default="sst2,trec,agnews",
                            help="table case: comma-separated data sets (sst2, trec, agnews)")
        parser.add_argument("--seeds", type=int, default=5,
                            help="table case: demonstration sets per data set (default 5)")
        parser.add_argument("--texts", type=int, default=300,
                            help="table case: test texts per data set (default 300)")
        parser.add_argument("--shots", type=int, default=4,
                            help="table case: demonstrations per prompt (default 4)")
        parser.add_argument("--methods", default="all",
                            help="table case: comma-separated method names, or all")
        parser.add_argument("--n-boot", type=int, default=200,
                            help="table case: bootstrap resamples of calibration_report")
        parser.add_argument("--model", default="auto",
                            help="table / fit_time cases: auto (a cached real LM if the "
                                 "Hugging Face cache holds one, else a small LM trained here), "
                                 "trained, or a model folder")
        parser.add_argument("--cache-dir", default=None,
                            help="where trained models are kept between runs (default "
                                 "$LLMLAB_CACHE_DIR/bench-calibration or "
                                 "~/.cache/llmlab/bench-calibration)")
        parser.add_argument("--table", default=None,
                            help="table case: also write the tables as markdown to this file")
        parser.add_argument("--threads", type=int, default=1,
                            help="torch threads (default 1: scikit-learn's temperature fit is "
                                 "single-threaded, and shared machines oversubscribe)")

    args = parse_args(__doc__.splitlines()[0], argv=argv, extra=extra)
    torch.set_num_threads(args.threads)
    log(f"data: {data_dir()}; environment: {environment(args.device)}")
    torch.manual_seed(0)
    for name, case in CASES.items():
        if args.case in (name, "all"):
            start = time.perf_counter()
            case(args)
            log(f"[{name}] {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
