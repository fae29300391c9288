"""PromptClassifier: label scores with the shared-prefix KV cache against plain forwards (and
against transformers for an imported GPT-2), the three prior-division calibrations, the
calibration report, and its errors (the other calibrators: test_prompted_calibrators.py)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

import llmlab
from llmlab import ModelConfig
from llmlab.data import LabelledTexts
from llmlab.errors import ConfigError, InputError
from llmlab.prompting import PromptClassifier, random_word_strings, sample_demonstrations

CHARS = "abcdefghijklmnopqrstuvwxyz .,:!?'\n/[]ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TEMPLATE = "Review: {text}\nSentiment: {label}\n"
LABELS = {"negative": 0, "positive": 1, "so so": 2}  # multi-token labels of unequal length
TEXTS = ["a fine film", "dull", "the cast is great but the plot is not", "", "ok!"]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(CHARS)


def gpt(tok, **kw):
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=256, n_layer=2,
                      n_head=2, d_model=32, **kw)
    return llmlab.build_model(cfg, seed=0).eval()


@pytest.fixture(scope="module")
def model(tok):
    return gpt(tok)


@pytest.fixture(scope="module")
def clf(model, tok):
    demos = LabelledTexts(["great fun", "a mess", "fine"], [1, 0, 2])
    return PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=demos, batch_size=2)


def plain_scores(model, tok, clf, texts):
    """Each (text, label) scored by one forward over prompt + label, no cache."""
    out = np.zeros((len(texts), clf.n_classes))
    for i, text in enumerate(texts):
        context = tok.encode(clf.prompt(text))
        for k in range(clf.n_classes):
            full = tok.encode(clf.prompt(text, k))
            lp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), -1)
            out[i, k] = sum(lp[j - 1, full[j]].item() for j in range(len(context), len(full)))
    return out


# --------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("extra", [{}, dict(pos_encoding="rope", n_kv_head=1, norm="rmsnorm")])
def test_cached_scores_match_plain_forwards(tok, extra):
    model = gpt(tok, **extra)
    for demos in ([], [("great fun", 1), ("a mess", "negative")]):
        clf = PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=demos, batch_size=2)
        assert np.allclose(clf.label_scores(TEXTS), plain_scores(model, tok, clf, TEXTS),
                           atol=1e-4)


def test_imported_gpt2_scores_match_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    from llmlab.interop import export_gpt2

    text = "Review: a good film\nSentiment: positive\nReview: bad\nSentiment: negative\n" * 20
    tok = llmlab.BPETokenizer.train(text, vocab_size=300)
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=96, n_layer=2,
                      n_head=2, d_model=32)
    export_gpt2(llmlab.build_model(cfg, seed=1), tmp_path / "gpt2", tokenizer=tok)
    model, loaded_tok = llmlab.load(tmp_path / "gpt2")
    clf = PromptClassifier(model, loaded_tok, "Review: {text}\nSentiment: {label}\n",
                           {"negative": 0, "positive": 1}, demonstrations=[("good", 1)])
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "gpt2").eval()
    texts = ["a good film", "bad bad"]
    expected = np.zeros((2, 2))
    for i, t in enumerate(texts):
        context = loaded_tok.encode(clf.prompt(t))
        for k, word in enumerate(clf.verbalizers):
            label = loaded_tok.encode(" " + word)  # the space before {label} goes with it
            ids = torch.tensor([context + label])
            with torch.no_grad():
                lp = torch.log_softmax(hf(ids).logits[0].double(), -1)
            expected[i, k] = sum(lp[len(context) + j - 1, tok_id].item()
                                 for j, tok_id in enumerate(label))
    assert np.allclose(clf.label_scores(texts), expected, atol=1e-4)


def test_predictions_and_report(clf):
    probs = clf.predict_proba(TEXTS)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1)
    expected = np.exp(clf.label_scores(TEXTS))
    assert np.allclose(probs, expected / expected.sum(1, keepdims=True))
    assert clf.predict(TEXTS).tolist() == probs.argmax(1).tolist()
    report = clf.evaluate(TEXTS, [1, 0, 1, 2, 1])
    assert {"accuracy", "ece", "f1"} <= set(report["metric"])


def test_demonstration_order_and_prompt(model, tok):
    demos = [("one", 0), ("two", 1), ("three", 2)]
    clf = PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=demos, order=[2, 0, 1])
    assert [t for t, _ in clf.demonstrations] == ["three", "one", "two"]
    assert clf.prompt("x", "positive") == (
        "Review: three\nSentiment: so so\n\n\nReview: one\nSentiment: negative\n\n\n"
        "Review: two\nSentiment: positive\n\n\nReview: x\nSentiment: positive")
    seeded = [PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=demos, order=7)
              for _ in range(2)]
    assert seeded[0].demonstrations == seeded[1].demonstrations
    assert sorted(seeded[0].demonstrations) == sorted(demos)
    drawn = sample_demonstrations(LabelledTexts(["a", "b", "c", "d"], [0, 1, 0, 1]), 2, seed=3)
    assert drawn == sample_demonstrations(list(zip("abcd", [0, 1, 0, 1])), 2, seed=3)
    assert len(drawn) == 2


# --------------------------------------------------------------------------- calibration
def test_contextual_calibration_divides_by_the_content_free_prior(clf):
    p = clf.predict_proba(TEXTS)
    cf = clf.predict_proba(["N/A", "", "[MASK]"]).mean(0)
    clf.calibrate("contextual")
    try:
        assert clf.calibration == "contextual" and np.allclose(clf.prior, cf)
        expected = p / cf
        assert np.allclose(clf.predict_proba(TEXTS), expected / expected.sum(1, keepdims=True))
    finally:
        clf.calibrate("none")
    assert np.allclose(clf.predict_proba(TEXTS), p)


def test_domain_calibration_uses_random_in_domain_words(clf):
    strings = random_word_strings(TEXTS, 4, seed=1)
    assert len(strings) == 4 and strings == random_word_strings(TEXTS, 4, seed=1)
    words = {w for t in TEXTS for w in t.split()}
    assert all(set(s.split()) <= words for s in strings)
    assert all(len(s.split()) == 3 for s in strings)  # 14 words / 5 texts, rounded
    clf.calibrate("domain", texts=TEXTS, n_samples=4, seed=1)
    try:
        assert np.allclose(clf.prior, clf.with_demonstrations(clf.demonstrations)
                           .predict_proba(strings).mean(0))
    finally:
        clf.calibrate("none")


@pytest.mark.filterwarnings("ignore:batch calibration estimated")  # 5 texts: a tiny batch
def test_batch_calibration_divides_by_the_mean_label_probability(clf):
    log_p = np.log(clf.predict_proba(TEXTS))
    clf.calibrate("batch")
    try:
        calibrated = np.log(clf.predict_proba(TEXTS))
        assert clf.prior is None  # estimated from each call's texts
        with pytest.warns(UserWarning, match="from only 2 texts"):
            clf.predict_proba(TEXTS[:2])
        centred = calibrated - calibrated.mean(1, keepdims=True)
        # Zhou et al. 2023: the prior is the batch mean of the label probabilities
        expected = log_p - np.log(np.exp(log_p).mean(0))
        assert np.allclose(centred, expected - expected.mean(1, keepdims=True))
        clf.calibrate("batch", texts=TEXTS[:3])  # a fixed prior from given texts
        assert np.allclose(clf.prior, np.exp(log_p[:3]).mean(0))
    finally:
        clf.calibrate("none")


@pytest.mark.filterwarnings("ignore:batch calibration estimated")
def test_calibration_report_and_spread(clf):
    labels = [1, 0, 1, 2, 1]
    report = clf.calibration_report(TEXTS, labels)
    assert report["method"].to_list() == ["none", "contextual", "domain", "batch"]
    assert report.columns == ["method", "accuracy", "macro_f1", "ece", "smece", "smece_low",
                              "smece_high", "nll"]
    base = clf.evaluate(TEXTS, labels)
    acc = base.filter(pl.col("metric") == "accuracy")["value"].item()
    assert report["accuracy"][0] == pytest.approx(acc)
    smece = llmlab.metrics.smooth_ece(clf.predict_proba(TEXTS), labels, variant="top_label")
    assert report["smece"][0] == pytest.approx(smece)
    assert (report["smece_low"] <= report["smece"]).all()
    assert (report["smece"] <= report["smece_high"]).all()
    runs = clf.spread(TEXTS, labels, seeds=3, methods=("none", "batch"), per_run=True)
    assert runs.height == 6 and set(runs["seed"]) == {0, 1, 2}
    pool = LabelledTexts(["good", "bad", "meh", "great", "awful"], [1, 0, 2, 1, 0])
    summary = clf.spread(TEXTS, labels, seeds=[0, 1], pool=pool, k=2, methods=("none",))
    metrics = ["accuracy", "macro_f1", "ece", "smece", "smece_low", "smece_high", "nll"]
    assert summary.columns == ["method", *[f"{m}_mean" for m in metrics],
                               *[f"{m}_std" for m in metrics], "runs"]
    assert summary["runs"].item() == 2


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("template, message", [
    ("Review: text\nSentiment: {label}", "must contain {text} exactly once"),
    ("Review: {text}\nSentiment:", "must contain {label} exactly once"),
    ("{text} {text} {label}", "found 2"),
    ("{label}: {text}", "comes before {text}"),
    (42, "template must be a str"),
])
def test_bad_templates(model, tok, template, message):
    with pytest.raises(ConfigError, match=message):
        PromptClassifier(model, tok, template, LABELS)


@pytest.mark.parametrize("labels, message", [
    ({"": 0, "positive": 1}, "tokenizes to nothing"),
    ({"  ": 0, "positive": 1}, "tokenizes to nothing"),
    ({"negative": 0, "positive": 2}, "exactly one word"),
    (["good", "good"], "repeat"),
    (["good"], "at least two labels"),
    (3, "dict word -> class id"),
])
def test_bad_labels(model, tok, labels, message):
    with pytest.raises(ConfigError, match=message):
        PromptClassifier(model, tok, TEMPLATE, labels)


def test_non_causal_models_are_refused(tok):
    base = dict(vocab_size=tok.vocab_size, context_length=32, n_layer=1, n_head=2, d_model=16)
    bert = llmlab.build_model(ModelConfig(family="bert", **base))
    with pytest.raises(ConfigError, match="needs a causal language model, got a 'bert'"):
        PromptClassifier(bert, tok, TEMPLATE, LABELS)
    classifier = llmlab.build_model(ModelConfig(family="gpt", n_labels=2, **base))
    with pytest.raises(ConfigError, match="classification head \\(n_labels=2\\)"):
        PromptClassifier(classifier, tok, TEMPLATE, LABELS)
    with pytest.raises(ConfigError, match="needs an llmlab model"):
        PromptClassifier(torch.nn.Linear(2, 2), tok, TEMPLATE, LABELS)
    small = llmlab.build_model(ModelConfig(family="gpt", **{**base, "vocab_size": 10}))
    with pytest.raises(ConfigError, match="tokenizer has"):
        PromptClassifier(small, tok, TEMPLATE, LABELS)
    with pytest.raises(ConfigError, match="needs an llmlab tokenizer"):
        PromptClassifier(gpt(tok), object(), TEMPLATE, LABELS)


def test_bad_calls(clf, model, tok):
    with pytest.raises(InputError, match="got one str"):
        clf.predict_proba("a single text")
    with pytest.raises(InputError, match="unknown calibration 'platt'"):
        clf.calibrate("platt")
    with pytest.raises(InputError, match="pass texts=unlabeled_texts"):
        clf.calibrate("domain")
    with pytest.raises(InputError, match="more than the model's context_length 256"):
        clf.predict_proba(["word " * 60])
    with pytest.raises(InputError, match="not a permutation"):
        PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=[("a", 0)], order=[1])
    with pytest.raises(InputError, match="not one of the label words"):
        PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=[("a", "great")])
    with pytest.raises(InputError, match="k=9 demonstrations"):
        sample_demonstrations([("a", 0)], 9)
    with pytest.raises(InputError, match="labels for"):
        clf.evaluate(TEXTS, [0, 1])
