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

    python benchmarks/calibration.py                    # all cases (~10 CPU minutes)
    python benchmarks/calibration.py --case speed --quick

SST-2 is read from ``$LLMLAB_DATA_DIR/sst2`` (default: ``shared/data`` beside the repository).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, iterations, log, parse_args, time_pair  # noqa: E402

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


def prompt_corpus(train, seed: int, epochs: int) -> str:
    """The train reviews as labelled prompts, in a new random order each epoch."""
    rng = random.Random(seed)
    docs = []
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        docs += [TEMPLATE.format(text=train.texts[i], label=train.label_names[train.labels[i]])
                 + "\n" for i in order]
    return "".join(docs)


def train_prompted_lm(args, train, dev, tok, corpus: str):
    """A small causal LM trained on the prompt corpus (by default warm-started from the trunk
    of a sentiment classifier trained on the same train split; see the module docstring)."""
    seq_len = 256
    base = dict(family="gpt", vocab_size=tok.vocab_size, context_length=seq_len, n_layer=2,
                n_head=4, d_model=128)
    lm = llmlab.build_model(llmlab.ModelConfig(**base, dropout=0.0), seed=0)
    quick = args.quick
    with tempfile.TemporaryDirectory() as runs:
        if args.lm_init == "classifier":
            start = time.perf_counter()
            trunk = llmlab.build_model(llmlab.ModelConfig(**base, n_labels=2, dropout=0.1), seed=0)
            steps = 150 if quick else 300
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
        steps = 100 if quick else 300
        data = CausalLMData.from_text(corpus, tok, seq_len=seq_len, val_fraction=0.02)
        run = llmlab.Trainer(lm, data, max_steps=steps, batch_size=16, lr=1e-3, warmup_steps=20,
                             eval_interval=steps, eval_batches=10, run_dir=runs,
                             progress=False).fit()
        val = run.metrics["val/loss"].drop_nulls()[-1]
    log(f"prompted: {lm.num_params() / 1e6:.2f}M-parameter GPT LM ({args.lm_init} init), "
        f"{steps} steps of {16 * seq_len} tokens in {time.perf_counter() - start:.0f} s "
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


CASES = {"finetune": case_finetune, "prompted": case_prompted, "speed": case_speed}


def main(argv: list[str] | None = None) -> None:
    def extra(parser):
        parser.add_argument("--case", choices=[*CASES, "all"], default="all")
        parser.add_argument("--lm-init", choices=["classifier", "scratch"], default="classifier",
                            help="prompted case: warm-start the LM's trunk from a sentiment "
                                 "classifier (default) or train it from scratch")
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
