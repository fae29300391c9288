"""The prompted-LM calibrators of llmlab.calibrate.prompted: each against a from-scratch
computation of its paper's formula on label log-probabilities written here, saving and
loading, the PromptClassifier that holds them (tiny llmlab model), its calibration / bias /
spread reports, and the bad-input errors."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
import torch

import llmlab
import llmlab.calibrate as cal
from llmlab import ModelConfig
from llmlab.calibrate import prompted
from llmlab.errors import CheckpointError, ConfigError, InputError
from llmlab.models import GPT
from llmlab.prompting import ALL_METHODS, CONTENT_FREE, PromptClassifier, random_word_strings

# a model that leans to label 0: 9 texts, 3 labels
P = np.array([
    [0.70, 0.20, 0.10], [0.50, 0.30, 0.20], [0.60, 0.10, 0.30],
    [0.45, 0.45, 0.10], [0.40, 0.50, 0.10], [0.50, 0.35, 0.15],
    [0.40, 0.20, 0.40], [0.30, 0.20, 0.50], [0.55, 0.15, 0.30],
])
LP = np.log(P)
Y = np.array([0, 0, 2, 1, 1, 1, 2, 2, 0])
CF = np.log([[0.6, 0.3, 0.1], [0.5, 0.25, 0.25]])  # the model's answers to "N/A" and ""


def renorm(q):
    return q / q.sum(1, keepdims=True)


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


# --------------------------------------------------------------------------- the formulas
@pytest.mark.parametrize("cls", [cal.ContextualCalibration, cal.DomainContextCalibration,
                                 cal.GenerativeCalibration])
def test_prior_division_on_other_inputs(cls):
    # Zhao et al. 2021 / Fei et al. 2023 / Jiang et al. 2023: q = diag(p_bar)^-1 p, where
    # p_bar is the mean label distribution of content-free / random-word / sampled inputs
    p_bar = np.array([0.55, 0.275, 0.175])
    fitted = cls().fit(CF)
    assert np.allclose(fitted.prior, p_bar)
    assert np.allclose(fitted.transform(LP), renorm(P / p_bar))
    assert np.allclose(fitted.transform_log_probs(LP), np.log(renorm(P / p_bar)))


def test_batch_calibration_divides_by_the_batch_mean():
    # Zhou et al. 2024: p_bar = mean over the batch of p(y | x_i)
    fitted = cal.BatchCalibration().fit(LP)
    assert np.allclose(fitted.prior, P.mean(0))
    assert np.allclose(fitted.transform(LP), renorm(P / P.mean(0)))
    # unnormalised label scores (summed token log-probs) give the same answer
    assert np.allclose(cal.BatchCalibration().fit(LP - 3.0).transform(LP - 3.0),
                       fitted.transform(LP))


def ucpa_from_scratch(lp, pi, steps):
    """Estienne et al. 2023's UCPA iteration as written: gamma_i = 0, then repeatedly
    beta_k = log pi_k - log((1/N) sum_i p_ik e^gamma_i), gamma_i = -log sum_k p_ik e^beta_k."""
    p = np.exp(lp)
    gamma = np.zeros(len(p))
    for _ in range(steps):
        beta = np.log(pi) - np.log((p * np.exp(gamma)[:, None]).mean(0))
        gamma = -np.log((p * np.exp(beta)).sum(1))
    return beta


def soft_label_nll_grad(lp, beta, pi):
    """Gradient (torch autograd) in beta of UCPA's ML objective with the label counts N_k
    replaced by N pi_k: -(1/N) sum_i sum_k pi_k log softmax(log p_i + beta)_k."""
    b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
    q = torch.log_softmax(torch.from_numpy(lp) + b, dim=1)
    (-(torch.from_numpy(np.asarray(pi, dtype=np.float64)) * q).sum(1).mean()).backward()
    return b.grad.numpy()


@pytest.mark.parametrize("target", [None, [0.5, 0.3, 0.2]])
def test_prior_adaptation_matches_the_target_prior(target):
    # Estienne et al. 2023: log q_ik = log p_ik + beta_k + gamma_i, beta the fixed point of
    # their iteration, where mean_i q_i = pi. From scratch: (1) their iteration written out
    # above; (2) beta minimises the convex mean_i logsumexp(log p_i + beta) - pi . beta (its
    # gradient is mean_i q_i - pi): plain gradient descent finds it; (3) autograd of that
    # objective vanishes at the fitted beta.
    pi = np.full(3, 1 / 3) if target is None else np.array(target)
    beta = np.zeros(3)
    for _ in range(20000):
        beta -= 2.0 * (softmax(LP + beta).mean(0) - pi)
    fitted = cal.PriorAdaptation(prior=target).fit(LP)
    assert np.allclose(fitted.transform(LP), softmax(LP + beta), atol=1e-6)
    assert np.allclose(fitted.transform(LP).mean(0), pi, atol=1e-8)
    assert np.allclose(fitted.shift, ucpa_from_scratch(LP, pi, 500), atol=1e-8)
    assert np.abs(soft_label_nll_grad(LP, fitted.shift, pi)).max() < 1e-8
    assert np.allclose(fitted.fitted_prior, pi)
    # unnormalised label scores give the same map (gamma_i absorbs each row's constant)
    assert np.allclose(cal.PriorAdaptation(prior=target).fit(LP - 3.0).transform(LP - 3.0),
                       fitted.transform(LP))
    # batch calibration is its first step from beta = 0 (uniform target)
    if target is None:
        first = softmax(LP - np.log(P.mean(0)))
        assert np.allclose(cal.BatchCalibration().fit(LP).transform(LP), first)


def test_naive_prior_adaptation_is_one_step():
    # the paper's naive UCPA / SUCPA: one step from gamma = 0, q_ik ∝ p_ik pi_k / mean_i p_ik
    pi = np.array([0.5, 0.3, 0.2])
    naive = cal.PriorAdaptation(prior=list(pi), max_iter=1).fit(LP)
    assert naive.iterations == 1
    assert np.allclose(naive.shift, ucpa_from_scratch(LP, pi, 1))
    assert np.allclose(naive.transform(LP), renorm(P * pi / P.mean(0)))
    # and it stops early once converged, well inside max_iter
    assert cal.PriorAdaptation(prior=list(pi)).fit(LP).iterations < 200


def test_sucpa_takes_the_prior_from_label_frequencies():
    # SUCPA: pi_k = N_k / N of the adaptation set's labels
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    freq = np.array([4, 2, 3]) / 9
    fitted = cal.PriorAdaptation().fit(LP, y)
    assert np.allclose(fitted.fitted_prior, freq)
    assert np.allclose(fitted.transform(LP).mean(0), freq, atol=1e-8)
    assert np.allclose(fitted.shift, ucpa_from_scratch(LP, freq, 500), atol=1e-8)
    assert np.abs(soft_label_nll_grad(LP, fitted.shift, freq)).max() < 1e-8
    assert np.allclose(fitted.transform(LP),
                       cal.PriorAdaptation(prior=list(freq)).fit(LP).transform(LP))


def test_prior_adaptation_bad_inputs():
    with pytest.raises(InputError, match="both prior= and labels"):
        cal.PriorAdaptation(prior=[0.4, 0.4, 0.2]).fit(LP, Y)
    with pytest.raises(InputError, match=r"never show class\(es\) \[1\]"):
        cal.PriorAdaptation().fit(LP, np.array([0, 0, 2, 0, 2, 0, 2, 2, 0]))
    with pytest.raises(InputError, match="max_iter must be an int >= 1"):
        cal.PriorAdaptation(max_iter=0)
    with pytest.raises(InputError, match="prior has 2 values for 3 labels"):
        cal.PriorAdaptation(prior=[0.5, 0.5]).fit(LP)


def three_clusters(n=90, seed=0, bias=0.6):
    """Label distributions of a biased model: three Dirichlet clusters, each nearest its
    own label, all pulled towards label 0 by ``bias``."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n // 3)
    alpha = 2.0 + 30.0 * np.eye(3)[y]
    p = np.stack([rng.dirichlet(a) for a in alpha])
    p = (1 - bias) * p + bias * np.array([1.0, 0.0, 0.0])
    return np.log(p), y


def gauss_density(x, mean, cov):
    d = x - mean
    inv = np.linalg.inv(cov)
    return np.exp(-0.5 * np.einsum("ni,ij,nj->n", d, inv, d)) / np.sqrt(
        np.linalg.det(2 * np.pi * cov))


def test_prototypical_calibration_is_a_matched_gaussian_mixture():
    # Han et al. 2022: a K-component GMM over the label distributions; each cluster is given
    # the label maximising sum_k mu_{c(k)}[k]; q_k = posterior of label k's cluster
    lp, y = three_clusters()
    fitted = cal.PrototypicalCalibration().fit(lp)
    p = np.exp(lp)
    best = max(itertools.permutations(range(3)),
               key=lambda perm: sum(fitted.means[perm[k], k] for k in range(3)))
    assert fitted.cluster_of.tolist() == list(best)
    joint = np.stack([w * gauss_density(p, m, c) for w, m, c in
                      zip(fitted.weights, fitted.means, fitted.covariances)], axis=1)
    expected = (joint / joint.sum(1, keepdims=True))[:, fitted.cluster_of]
    assert np.allclose(fitted.transform(lp), expected, atol=1e-8)
    # EM's fixed point: the means are the responsibility-weighted means of the data
    resp = joint / joint.sum(1, keepdims=True)
    assert np.allclose(fitted.means, (resp.T @ p) / resp.sum(0)[:, None], atol=1e-4)
    # the biased model calls most texts 0; the matched clusters recover the labels
    assert (p.argmax(1) == y).mean() < 0.75
    assert (fitted.transform(lp).argmax(1) == y).mean() > 0.95


def test_prototypical_mixture_agrees_with_scikit_learn():
    mixture = pytest.importorskip("sklearn.mixture")
    lp, _ = three_clusters(seed=1)
    p = np.exp(lp)
    ours = cal.PrototypicalCalibration(tol=1e-10, max_iter=500).fit(lp)
    theirs = mixture.GaussianMixture(3, covariance_type="full", reg_covar=1e-4, tol=1e-10,
                                     max_iter=500, n_init=3, random_state=0).fit(p)
    order = [int(np.argmin(((theirs.means_ - m) ** 2).sum(1))) for m in ours.means]
    assert sorted(order) == [0, 1, 2]
    assert np.allclose(ours.means, theirs.means_[order], atol=1e-4)
    assert np.allclose(ours.weights, theirs.weights_[order], atol=1e-4)
    assert np.allclose(ours.transform(lp), theirs.predict_proba(p)[:, order][:, ours.cluster_of],
                       atol=1e-3)


def test_match_clusters_is_the_best_assignment():
    rng = np.random.default_rng(0)
    for k in (2, 4, 6):
        means = rng.random((k, k))
        best = max(itertools.permutations(range(k)),
                   key=lambda perm: sum(means[perm[j], j] for j in range(k)))
        score = sum(means[c, j] for j, c in enumerate(prompted.match_clusters(means)))
        assert score == pytest.approx(sum(means[best[j], j] for j in range(k)))


def test_linc_is_an_affine_map_of_the_probabilities_at_its_optimum():
    # Abbas et al. 2024: q = softmax(A p + b), cross-entropy (+ l2 |A - I|^2 + l2 |b|^2)
    l2 = 0.05
    fitted = cal.LinearProbeCalibration(l2=l2).fit(LP, Y)
    a, b = fitted.weight, fitted.bias
    q = softmax(P @ a.T + b)
    assert np.allclose(fitted.transform(LP), q)
    g = (q - np.eye(3)[Y]) / len(Y)  # d mean CE / d logits
    grad_a = g.T @ P + 2 * l2 * (a - np.eye(3))
    grad_b = g.sum(0) + 2 * l2 * b
    assert np.abs(grad_a).max() < 1e-6 and np.abs(grad_b).max() < 1e-6


def sc_loss(w, b, trust, invariance, groups):
    """Gundem et al. 2025 as llmlab writes it: CE of softmax(w * l + b) with l_k the log-odds
    log(p_k / (1 - p_k)), + trust |(w - 1, b)|^2 + invariance * mean |q_i - mean_g q|^2."""
    logits = w * np.log(P / (1 - P)) + b
    q = softmax(logits)
    value = -np.log(q[np.arange(len(Y)), Y]).mean()
    value += trust * (((w - 1) ** 2).sum() + (b ** 2).sum())
    if groups is not None:
        means = np.stack([q[groups == g].mean(0) for g in groups])
        value += invariance * ((q - means) ** 2).sum(1).mean()
    return value


@pytest.mark.parametrize("trust, invariance", [(0.01, 0.0), (0.3, 2.0)])
def test_supervised_calibration_minimises_its_regularised_loss(trust, invariance):
    groups = np.array([0, 0, 1, 1, 1, 2, 2, 3, 3]) if invariance else None
    fitted = cal.SupervisedCalibration(trust=trust, invariance=invariance).fit(
        LP, Y, groups=groups)
    w, b = fitted.weight, fitted.bias
    assert np.allclose(fitted.transform(LP), softmax(w * np.log(P / (1 - P)) + b))
    step = 1e-6
    for vec in (w, b):
        for i in range(3):
            up, down = vec.copy(), vec.copy()
            up[i] += step
            down[i] -= step
            args = ((up, b), (down, b)) if vec is w else ((w, up), (w, down))
            grad = (sc_loss(*args[0], trust, invariance, groups)
                    - sc_loss(*args[1], trust, invariance, groups)) / (2 * step)
            assert abs(grad) < 1e-5


def test_supervised_calibration_can_reverse_the_decision():
    # a model that is confidently wrong (swaps two labels): prior shifts cannot fix it
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.8 - 0.6 * y + rng.normal(0, 0.1, 200), 0.02, 0.98)
    lp = np.log(np.stack([1 - p1, p1], 1))
    fitted = cal.SupervisedCalibration().fit(lp, y)
    assert (fitted.weight < 0).all()
    assert (fitted.transform(lp).argmax(1) == y).mean() > 0.95
    assert (cal.BatchCalibration().fit(lp).transform(lp).argmax(1) == y).mean() < 0.1


def test_hidden_state_calibration_is_nearest_centroid():
    # Cho et al. 2024: class centroids of the last hidden state, nearest one wins
    h = np.array([[0.0, 1.0], [0.2, 1.2], [2.0, 0.0], [2.2, -0.2], [1.0, 3.0], [1.2, 3.2]])
    y = np.array([0, 0, 1, 1, 2, 2])
    fitted = cal.HiddenStateCalibration().fit(h, y)
    centroids = np.array([[0.1, 1.1], [2.1, -0.1], [1.1, 3.1]])
    s2 = ((h - centroids[y]) ** 2).sum() / h.size  # pooled within-class variance
    assert np.allclose(fitted.centroids, centroids) and fitted.variance == pytest.approx(s2)
    new = np.array([[0.1, 0.9], [3.0, 0.0], [1.0, 2.5]])
    d2 = ((new[:, None] - centroids[None]) ** 2).sum(-1)
    assert np.allclose(fitted.transform(new), softmax(-d2 / (2 * s2)))
    assert fitted.transform(new).argmax(1).tolist() == d2.argmin(1).tolist() == [0, 1, 2]


def test_no_calibration_is_the_label_softmax():
    assert np.allclose(cal.NoCalibration().fit(LP).transform(LP - 1.0), P)


# --------------------------------------------------------------------------- one design
def fitted_calibrators():
    lp, _ = three_clusters()
    return {
        "none": cal.NoCalibration().fit(LP),
        "contextual": cal.ContextualCalibration().fit(CF),
        "domain": cal.DomainContextCalibration().fit(CF),
        "batch": cal.BatchCalibration().fit(LP),
        "generative": cal.GenerativeCalibration().fit(CF),
        "prior": cal.PriorAdaptation(prior=[0.4, 0.4, 0.2]).fit(LP),
        "prototypical": cal.PrototypicalCalibration(n_init=2).fit(lp),
        "linc": cal.LinearProbeCalibration(l2=0.1).fit(LP, Y),
        "supervised": cal.SupervisedCalibration(trust=0.1).fit(LP, Y),
    }


def test_every_method_is_a_registered_exported_calibrator():
    for name, cls in prompted.METHODS.items():
        assert issubclass(cls, cal.Calibrator) and cal.REGISTRY[cls.__name__] is cls
        assert getattr(cal, cls.__name__) is cls
        assert prompted.make_calibrator(name, 3).__class__ is cls
    assert set(ALL_METHODS) == set(prompted.METHODS)


@pytest.mark.parametrize("name", list(fitted_calibrators()))
def test_save_load_round_trip(name, tmp_path):
    fitted = fitted_calibrators()[name]
    folder = fitted.save(tmp_path / name)
    for loaded in (cal.load(folder), type(fitted).load(folder), cal.Calibrator.load(folder)):
        assert type(loaded) is type(fitted) and loaded.settings() == fitted.settings()
        assert np.array_equal(loaded.transform_log_probs(LP), fitted.transform_log_probs(LP))


def test_hidden_state_calibrator_round_trip(tmp_path):
    h = np.random.default_rng(0).normal(size=(12, 5))
    y = np.arange(12) % 3
    fitted = cal.HiddenStateCalibration(n_classes=3).fit(h, y)
    loaded = cal.HiddenStateCalibration.load(fitted.save(tmp_path / "hidden"))
    assert np.array_equal(loaded.transform(h), fitted.transform(h))


def test_sucpa_round_trip_keeps_the_fitted_prior(tmp_path):
    fitted = cal.PriorAdaptation(max_iter=3).fit(LP, np.array([0, 0, 0, 0, 1, 1, 2, 2, 2]))
    loaded = cal.load(fitted.save(tmp_path / "sucpa"))
    assert np.array_equal(loaded.fitted_prior, fitted.fitted_prior)
    assert np.array_equal(loaded.transform(LP), fitted.transform(LP))
    assert loaded.settings() == {"prior": None, "max_iter": 3, "tol": 1e-9}


def test_loading_a_calibrator_of_another_kind_is_refused(tmp_path):
    folder = cal.BatchCalibration().fit(LP).save(tmp_path / "batch")
    with pytest.raises(CheckpointError, match="holds a BatchCalibration, not a "
                                              "ContextualCalibration.*llmlab.calibrate.load"):
        cal.ContextualCalibration.load(folder)
    with pytest.raises(CheckpointError, match="not a TemperatureScaling"):
        cal.TemperatureScaling.load(folder)


# --------------------------------------------------------------------------- the classifier
CHARS = "abcdefghijklmnopqrstuvwxyz .,:!?'\n/[]ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TEMPLATE = "Review: {text}\nSentiment: {label}\n"
LABELS = {"negative": 0, "positive": 1, "so so": 2}
TEXTS = ["a fine film", "dull", "great cast", "ok!", "a mess", "boring plot", "so good",
         "not bad", "meh", "awful", "loved it", "fair"]
TEXT_LABELS = [1, 0, 1, 2, 0, 0, 1, 2, 2, 0, 1, 2]
DEMOS = [("great fun", 1), ("a mess", 0), ("fine", 2), ("bad", 0)]


@pytest.fixture(scope="module")
def tok():
    return llmlab.CharTokenizer.train(CHARS)


@pytest.fixture(scope="module")
def model(tok):
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=256, n_layer=2,
                      n_head=2, d_model=32)
    return llmlab.build_model(cfg, seed=0).eval()


@pytest.fixture
def clf(model, tok):
    return PromptClassifier(model, tok, TEMPLATE, LABELS, demonstrations=DEMOS, batch_size=5)


def test_hidden_states_are_the_last_position_of_a_plain_forward(clf, model, tok):
    hidden = clf.hidden_states(TEXTS[:4])
    assert hidden.shape == (4, 32)
    for i, text in enumerate(TEXTS[:4]):
        with torch.no_grad():
            out = model(torch.tensor([tok.encode(clf.prompt(text))]))
        assert np.allclose(hidden[i], out.last_hidden_state[0, -1].double().numpy(), atol=1e-4)


@pytest.mark.filterwarnings("ignore:the fitted temperature")  # a random model: no signal
@pytest.mark.parametrize("method, cls, needs", [
    ("prior", cal.PriorAdaptation, "texts"),
    ("prototypical", cal.PrototypicalCalibration, "texts"),
    ("linc", cal.LinearProbeCalibration, "labelled"),
    ("supervised", cal.SupervisedCalibration, "labelled"),
    ("temperature", cal.TemperatureScaling, "labelled"),
    ("vector", cal.VectorScaling, "labelled"),
    ("isotonic", cal.IsotonicCalibration, "labelled"),
    ("histogram", cal.HistogramBinning, "labelled"),
    ("matrix", cal.MatrixScaling, "labelled"),
])
def test_calibrate_fits_the_method_on_the_label_scores(clf, method, cls, needs):
    kwargs = {"texts": TEXTS} if needs == "texts" else {"texts": TEXTS, "labels": TEXT_LABELS}
    clf.calibrate(method, **kwargs)
    assert clf.calibration == method and isinstance(clf.calibrator, cls)
    scores = clf.label_scores(TEXTS)
    reference = cls().fit(np.log(softmax(scores)), *([TEXT_LABELS] if needs == "labelled"
                                                      else []), kind="logits")
    assert np.allclose(clf.predict_proba(TEXTS),
                       np.exp(reference.transform_log_probs(np.log(softmax(scores)),
                                                            kind="logits")), atol=1e-6)


def test_platt_scaling_through_its_class_name(model, tok):
    clf = PromptClassifier(model, tok, TEMPLATE, {"negative": 0, "positive": 1},
                           demonstrations=DEMOS[:2])
    binary = [int(v == 1) for v in TEXT_LABELS]
    clf.calibrate("PlattScaling", texts=TEXTS, labels=binary)
    assert clf.calibration == "PlattScaling" and clf.predict_proba(TEXTS).shape == (12, 2)


def test_hidden_calibration_through_the_classifier(clf):
    clf.calibrate("hidden", texts=TEXTS, labels=TEXT_LABELS)
    reference = cal.HiddenStateCalibration().fit(clf.hidden_states(TEXTS), TEXT_LABELS)
    assert np.allclose(clf.predict_proba(TEXTS[:3]), reference.transform(
        clf.hidden_states(TEXTS[:3])))


def test_generative_calibration_divides_by_the_models_own_samples(clf):
    samples = clf.sample_texts(4, seed=3, max_new_tokens=12)
    assert len(samples) == 4 and samples == clf.sample_texts(4, seed=3, max_new_tokens=12)
    assert all("\n" not in s for s in samples)
    p = clf.predict_proba(TEXTS)
    clf.calibrate("generative", n_samples=4, seed=3)  # samples with max_new_tokens=32
    prior = clf.with_demonstrations(DEMOS).predict_proba(clf.sample_texts(4, seed=3)).mean(0)
    assert np.allclose(clf.prior, prior)
    assert np.allclose(clf.predict_proba(TEXTS), renorm(p / prior))


def test_supervised_calibration_from_the_demonstrations_alone(clf):
    clf.calibrate("supervised", invariance=1.0)
    log_probs, y, groups = clf._context_examples()
    assert len(y) == 2 * len(DEMOS) and groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    reference = cal.SupervisedCalibration(invariance=1.0).fit(log_probs, y, groups=groups)
    assert np.allclose(clf.calibrator.weight, reference.weight)


def test_a_loaded_calibrator_is_used_as_is(clf, tmp_path):
    folder = clf.calibrate("batch", texts=TEXTS).calibrator.save(tmp_path / "b")
    p = clf.predict_proba(TEXTS)
    fresh = clf.with_demonstrations(DEMOS).calibrate(cal.load(folder))
    assert fresh.calibration == "batch" and np.allclose(fresh.predict_proba(TEXTS), p)


@pytest.mark.filterwarnings("ignore:the fitted temperature")
def test_calibration_report_of_every_method(clf):
    report = clf.calibration_report(TEXTS, TEXT_LABELS, methods="all", folds=3, n_samples=4)
    assert report["method"].to_list() == list(ALL_METHODS)
    assert report.columns == ["method", "accuracy", "macro_f1", "ece", "smece", "smece_low",
                              "smece_high", "nll"]
    assert report.select(pl.all().exclude("method").is_finite().all()).row(0) == (True,) * 7
    row = report.filter(pl.col("method") == "batch").row(0, named=True)
    expected = cal.BatchCalibration().fit(np.log(softmax(clf.label_scores(TEXTS))))
    probs = expected.transform(np.log(softmax(clf.label_scores(TEXTS))))
    assert row["accuracy"] == pytest.approx((probs.argmax(1) == TEXT_LABELS).mean())
    assert clf.calibration == "none"  # the report leaves the classifier's calibration alone


def test_report_cross_fits_supervised_methods_and_takes_a_held_out_set(clf):
    y = np.array(TEXT_LABELS)
    report = clf.calibration_report(TEXTS, y, methods=["linc"], folds=3, seed=1)
    x = np.log(softmax(clf.label_scores(TEXTS)))
    fold = llmlab.prompting.stratified_folds(y, 3, 1)
    lp = np.zeros_like(x)
    for f in range(3):
        fitted = cal.LinearProbeCalibration().fit(x[fold != f], y[fold != f])
        lp[fold == f] = fitted.transform_log_probs(x[fold == f])
    assert report["nll"].item() == pytest.approx(-lp[np.arange(12), y].mean())
    held = clf.calibration_report(TEXTS[:6], y[:6], methods="linc", fit_texts=TEXTS[6:],
                                  fit_labels=y[6:])
    fitted = cal.LinearProbeCalibration().fit(x[6:], y[6:])
    assert held["nll"].item() == pytest.approx(
        -fitted.transform_log_probs(x[:6])[np.arange(6), y[:6]].mean())


def test_bias_report_and_its_plot(clf):
    report = clf.bias_report(TEXTS, n_samples=4, n_orders=4)
    assert report.columns == ["diagnostic", "label", "value", "runs"]
    assert report["diagnostic"].unique(maintain_order=True).to_list() == [
        "content_free_prior", "domain_prior", "mean_prediction", "predicted_share",
        "majority", "recency"]
    value = dict(zip(zip(report["diagnostic"], report["label"]), report["value"]))
    cf = clf.predict_proba(list(CONTENT_FREE)).mean(0)
    assert [value["content_free_prior", w] for w in clf.verbalizers] == pytest.approx(cf)
    domain = clf.predict_proba(random_word_strings(TEXTS, 4, seed=0)).mean(0)
    assert [value["domain_prior", w] for w in clf.verbalizers] == pytest.approx(domain)
    # majority: the leave-one-out sets of labels [1, 0, 2, 0]; "negative" (0) is the strict
    # majority in the two that keep both 0s (dropping demonstration 0 or 2), never the others
    subsets = [DEMOS[:i] + DEMOS[i + 1:] for i in range(4)]
    p0 = [clf.with_demonstrations(d).predict_proba(TEXTS).mean(0)[0] for d in subsets]
    assert value["majority", "negative"] == pytest.approx((p0[0] + p0[2]) / 2
                                                          - (p0[1] + p0[3]) / 2)
    assert value["majority", "positive"] is None
    assert clf.plot_bias(TEXTS, n_samples=4, n_orders=2) is not None


def test_spread_over_templates_and_orders(clf):
    templates = [TEMPLATE, "Text: {text}\nLabel: {label}\n"]
    runs = clf.spread(TEXTS, TEXT_LABELS, templates=templates, seeds=2,
                      methods=("none", "batch"), per_run=True)
    assert runs.columns[:3] == ["template", "seed", "method"] and runs.height == 8
    again = clf.with_template(templates[1]).with_demonstrations(DEMOS, order=1)
    row = runs.filter((pl.col("template") == templates[1]) & (pl.col("seed") == 1)
                      & (pl.col("method") == "none"))
    assert row["nll"].item() == pytest.approx(
        again.calibration_report(TEXTS, TEXT_LABELS, methods="none")["nll"].item())
    summary = clf.spread(TEXTS, TEXT_LABELS, templates=templates, seeds=2, methods="none")
    assert summary["template"].to_list() == templates and summary["runs"].to_list() == [2, 2]
    with pytest.raises(ConfigError, match="must contain {text} exactly once"):
        clf.spread(TEXTS, TEXT_LABELS, templates=["Sentiment: {label}"], seeds=1)


# --------------------------------------------------------------------------- bad input
def test_fewer_texts_than_a_method_needs(clf):
    with pytest.raises(InputError, match="needs at least 6 examples for 3 labels, got 4. "
                                         "Pass at least 6 texts"):
        cal.PrototypicalCalibration().fit(LP[:4])
    with pytest.raises(InputError, match="needs at least 6 examples"):
        clf.calibrate("prototypical", texts=TEXTS[:5])
    with pytest.raises(InputError, match="needs at least 3 examples for 3 labels, got 2"):
        cal.LinearProbeCalibration().fit(LP[:2], Y[:2])
    with pytest.raises(InputError, match="none of class 2 among 4. Pass at least 3 labelled"):
        cal.HiddenStateCalibration(n_classes=3).fit(np.ones((4, 2)), [0, 1, 0, 1])
    with pytest.raises(InputError, match="cross-fitting .* Pass more labelled texts"):
        clf.calibration_report(TEXTS[:6], [0, 0, 0, 1, 1, 2], methods="hidden", folds=3)


def test_labels_out_of_range(clf):
    with pytest.raises(InputError, match="contain class 5, outside the 3 classes"):
        clf.calibrate("linc", texts=TEXTS, labels=[5] + TEXT_LABELS[1:])
    with pytest.raises(InputError, match="contain class 3, outside the 3 classes"):
        cal.SupervisedCalibration().fit(LP, [3] + list(Y[1:]))
    with pytest.raises(InputError, match="contain class -1"):
        clf.calibration_report(TEXTS, [-1] + TEXT_LABELS[1:])


@pytest.mark.parametrize("template, message", [
    ("Review: \nSentiment: {label}", "must contain {text} exactly once"),
    ("Review: {text}\nSentiment:", "must contain {label} exactly once"),
])
def test_templates_without_their_fields(clf, template, message):
    with pytest.raises(ConfigError, match=message + ".*Write it like"):
        clf.with_template(template)


def test_label_words_that_tokenize_to_nothing(model, tok):
    with pytest.raises(ConfigError, match="tokenizes to nothing.*Use a non-empty word"):
        PromptClassifier(model, tok, TEMPLATE, {"negative": 0, " ": 1})


def test_nan_log_probabilities(tok):
    with pytest.raises(InputError, match="contains NaN in 1 row"):
        cal.BatchCalibration().fit(np.array([[np.nan, -1.0], [-0.5, -1.0]]))
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=64, n_layer=1,
                      n_head=2, d_model=16)
    broken = llmlab.build_model(cfg, seed=0).eval()
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))
    clf = PromptClassifier(broken, tok, TEMPLATE, LABELS)
    with pytest.raises(InputError, match="non-finite .* label log-probabilities; check that "
                                         "its weights are finite"):
        clf.calibrate("batch", texts=TEXTS[:2])


class NoHiddenGPT(GPT):
    """A model class whose forward gives no hidden states."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.last_hidden_state = None
        return out


def test_a_method_that_needs_hidden_states_on_a_model_without_them(tok):
    cfg = ModelConfig(family="gpt", vocab_size=tok.vocab_size, context_length=64, n_layer=1,
                      n_head=2, d_model=16)
    clf = PromptClassifier(NoHiddenGPT(cfg).eval(), tok, TEMPLATE, LABELS)
    assert clf.predict_proba(TEXTS[:2]).shape == (2, 3)  # label scores still work
    with pytest.raises(InputError, match="NoHiddenGPT gives no hidden states.*'linc'"):
        clf.calibrate("hidden", texts=TEXTS, labels=TEXT_LABELS)


def test_other_bad_calls(clf):
    with pytest.raises(InputError, match="Did you mean 'prototypical'"):
        clf.calibrate("prototypal")
    with pytest.raises(InputError, match="fitted on labelled texts: pass texts= and labels="):
        clf.calibrate("linc", texts=TEXTS)
    with pytest.raises(InputError, match="pass texts=unlabeled_texts"):
        clf.calibrate("prototypical")
    with pytest.raises(InputError, match="invariance=1.0 needs groups"):
        clf.calibrate("supervised", texts=TEXTS, labels=TEXT_LABELS, invariance=1.0)
    two = PromptClassifier(clf.model, clf.tokenizer, TEMPLATE, ["negative", "positive"])
    with pytest.raises(InputError, match="fitted on 3 classes; the classifier has 2"):
        two.calibrate(cal.BatchCalibration().fit(LP))
    with pytest.raises(InputError, match="prior must be positive probabilities"):
        cal.PriorAdaptation(prior=[0.5, 0.6])
    with pytest.raises(InputError, match="folds must be an int >= 2"):
        clf.calibration_report(TEXTS, TEXT_LABELS, methods="linc", folds=1)
