"""Few-shot classification with a causal language model, the calibration of its label
probabilities, and reports that compare the calibrations and measure the prompt's biases.

>>> clf = llmlab.PromptClassifier(model, tok,                                # doctest: +SKIP
...     template="Review: {text}\\nSentiment: {label}",
...     labels={"negative": 0, "positive": 1}, demonstrations=train[:4], order=0)
>>> clf.predict_proba(["a gripping, funny film"])                            # doctest: +SKIP
>>> clf.calibrate("contextual").evaluate(test.texts, test.labels)            # doctest: +SKIP

How a text is scored. The prompt is the demonstrations, each the template filled with its text
and label (joined by ``separator``), then the template filled with the text up to ``{label}``.
The score of class k is the summed log-probability of its verbalizer's tokens after the prompt,
``log p(label tokens | prompt)``; the label probabilities are the softmax of the K scores.
Spaces right before ``{label}`` are scored as part of the label (``" positive"``), since a
BPE tokenizer merges a word with the space before it. The demonstrations' tokens are computed
once per call and kept in a KV cache; each text is then run once, and each label of more than
one token is run over the cache (which is rewound between labels), so a label costs its own
tokens only.

Calibration. The classifier holds one :class:`llmlab.calibrate.Calibrator` over the label
log-probabilities (``clf.calibrator``); :meth:`PromptClassifier.calibrate` builds the inputs a
method is fitted on and fits it. The prompted-LM methods are in
:mod:`llmlab.calibrate.prompted` (each cites its paper): contextual (Zhao et al. 2021),
domain-context (Fei et al. 2023), batch (Zhou et al. 2024), generative (Jiang et al. 2023),
prior adaptation (Estienne et al. 2023), prototypical (Han et al. 2022), LinC (Abbas et al.
2024), supervised (Gundem et al. 2025) and hidden-state calibration (Cho et al. 2024); the
post-hoc calibrators (temperature, vector, matrix, Platt, isotonic, histogram) apply to the
label scores too. Batch calibration without texts estimates its prior from each
``predict_proba`` call's texts (pass the test set in one call).

>>> clf.calibrate("prototypical", texts=unlabelled)                          # doctest: +SKIP
>>> clf.calibration_report(test.texts, test.labels, methods="all")           # doctest: +SKIP
>>> clf.bias_report(test.texts)                                              # doctest: +SKIP
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from llmlab.calibrate.base import Calibrator
from llmlab.calibrate.prompted import METHODS as CALIBRATORS
from llmlab.calibrate.prompted import (
    BatchCalibration,
    NoCalibration,
    SupervisedCalibration,
    inputs_of,
    log_softmax,
    make_calibrator,
    method_name,
)
from llmlab.errors import ConfigError, InputError, TokenizerError
from llmlab.metrics import DEFAULT_BINS, check_labels, evaluate, report_value, smooth_ece_interval

__all__ = ["ALL_METHODS", "CONTENT_FREE", "METHODS", "PromptClassifier", "plot_bias",
           "random_word_strings", "report_row", "sample_demonstrations"]

CONTENT_FREE = ("N/A", "", "[MASK]")
#: the methods :meth:`PromptClassifier.calibration_report` compares by default
METHODS = ("none", "contextual", "domain", "batch")
#: every method name :meth:`PromptClassifier.calibrate` takes (``methods="all"``)
ALL_METHODS = tuple(CALIBRATORS)


def _check_template(template: Any) -> tuple[str, str, str]:
    """``(context part with {text}, space moved to the label, part after {label})``."""
    if not isinstance(template, str):
        raise ConfigError(f"template must be a str, got {type(template).__name__}; e.g. "
                          "'Review: {text}\\nSentiment: {label}'.")
    for field in ("{text}", "{label}"):
        count = template.count(field)
        if count != 1:
            raise ConfigError(
                f"the template must contain {field} exactly once, found {count} in "
                f"{template!r}. Write it like 'Review: {{text}}\\nSentiment: {{label}}': "
                "{text} marks where each input goes, {label} where the label word is scored."
            )
    cut = template.index("{label}")
    if template.index("{text}") > cut:
        raise ConfigError(f"in {template!r} {{label}} comes before {{text}}; a causal model "
                          "scores the label after reading the text, so put {label} last.")
    context = template[:cut]
    stripped = context.rstrip(" \t")
    return stripped, context[len(stripped):], template[cut + len("{label}"):]


def _fill(part: str, text: str) -> str:
    return part.replace("{text}", text)  # not str.format: texts may hold braces


def _check_texts(texts: Any, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise InputError(f"{name} must be a list of strings, got one str; wrap it: [text].")
    try:
        texts = list(texts)
    except TypeError:
        raise InputError(f"{name} must be a list of strings, got {type(texts).__name__}.") from None
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise InputError(f"{name} must all be strings; got a {type(bad[0]).__name__}.")
    if not texts:
        raise InputError(f"{name} are empty; pass at least one text.")
    return texts


def _check_model(model: Any, tokenizer: Any) -> None:
    cfg = getattr(model, "config", None)
    if not isinstance(model, torch.nn.Module) or cfg is None or not hasattr(cfg, "family"):
        raise ConfigError(f"PromptClassifier needs an llmlab model (with .config), got "
                          f"{type(model).__name__}; build one with llmlab.build_model(cfg) or "
                          "load one with llmlab.load(folder).")
    if cfg.family != "gpt":
        raise ConfigError(
            f"PromptClassifier needs a causal language model, got a {cfg.family!r} model. "
            f"{'BERT reads both directions and' if cfg.family == 'bert' else 'It'} cannot "
            "score a label as the continuation of a prompt. Use a GPT (family='gpt'), e.g. "
            "llmlab.load(gpt2_folder); fine-tune a BERT classifier (n_labels > 0) instead."
        )
    if cfg.n_labels:
        raise ConfigError(
            f"this GPT has a classification head (n_labels={cfg.n_labels}), not a language-model "
            "head, so it has no next-token probabilities to prompt. Evaluate its logits "
            "directly with llmlab.evaluate, or load the language model without n_labels."
        )
    if not all(hasattr(tokenizer, a) for a in ("encode", "encode_batch", "vocab_size")):
        raise ConfigError(
            f"PromptClassifier needs an llmlab tokenizer, got {type(tokenizer).__name__}. "
            "llmlab.load(folder) returns the model's; wrap a transformers tokenizer with "
            "llmlab.HFTokenizer(tokenizer.backend_tokenizer)."
        )
    if tokenizer.vocab_size > cfg.vocab_size:
        raise ConfigError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the model only "
            f"{cfg.vocab_size}; pass the tokenizer the model was trained with."
        )


def _verbalizers(labels: Any) -> list[str]:
    """Class id -> label word, from ``{"negative": 0, ...}`` or ``["negative", ...]``."""
    if isinstance(labels, Mapping):
        words, ids = list(labels), list(labels.values())
        if any(not isinstance(w, str) for w in words):
            raise ConfigError("labels maps label words (str) to class ids, e.g. "
                              "{'negative': 0, 'positive': 1}.")
        if sorted(ids) != list(range(len(ids))) or any(isinstance(i, bool) for i in ids):
            raise ConfigError(
                f"labels must give each class id 0 .. {len(ids) - 1} exactly one word; got ids "
                f"{ids}. Use one word per class, e.g. {{'negative': 0, 'positive': 1}}."
            )
        return [w for _, w in sorted(zip(ids, words))]
    if isinstance(labels, (list, tuple)) and all(isinstance(w, str) for w in labels):
        return list(labels)
    raise ConfigError(f"labels must be a dict word -> class id or a list of words, got "
                      f"{type(labels).__name__}.")


def sample_demonstrations(pool: Any, k: int, seed: int = 0) -> list[tuple[str, int]]:
    """``k`` (text, label) pairs drawn without replacement from ``pool`` (a ``LabelledTexts``
    or a list of pairs) with ``random.Random(seed)``, in the drawn order."""
    pairs = _pairs(pool)
    if not isinstance(k, int) or k < 0 or k > len(pairs):
        raise InputError(f"k={k!r} demonstrations cannot be drawn from a pool of {len(pairs)}; "
                         f"pass 0 <= k <= {len(pairs)}.")
    return [pairs[i] for i in random.Random(seed).sample(range(len(pairs)), k)]


def _pairs(examples: Any) -> list[tuple[str, Any]]:
    if examples is None:
        return []
    if hasattr(examples, "texts") and hasattr(examples, "labels"):
        return list(zip(examples.texts, examples.labels))
    try:
        pairs = [tuple(p) for p in examples]
    except TypeError:
        raise InputError("demonstrations must be LabelledTexts or a list of (text, label) "
                         "pairs.") from None
    if any(len(p) != 2 or not isinstance(p[0], str) for p in pairs):
        raise InputError("demonstrations must be (text, label) pairs, e.g. "
                         "[('great film', 1), ('dull', 'negative')], or LabelledTexts.")
    return pairs


class PromptClassifier:
    """A few-shot classifier made of a causal LM, a template, label words and demonstrations.

    - ``template``: text with ``{text}`` and then ``{label}``, e.g.
      ``"Review: {text}\\nSentiment: {label}"``; anything after ``{label}`` ends each
      demonstration.
    - ``labels``: ``{"negative": 0, "positive": 1}`` (word -> class id) or a list of words in
      class order. A word may be several tokens: its score is the sum of their log-probs.
    - ``demonstrations``: ``LabelledTexts`` or ``(text, label)`` pairs (label = class id or
      word), put before the text in the given order, or shuffled by ``order=seed``, or
      arranged by ``order=[indices]``.
    - ``separator`` joins demonstrations and the text; ``batch_size`` texts are scored per
      forward; ``prepend_bos`` starts each prompt with the tokenizer's bos token.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        template: str = "{text} {label}",
        labels: Mapping[str, int] | Sequence[str] = ("negative", "positive"),
        *,
        demonstrations: Any = None,
        order: int | Sequence[int] | None = None,
        separator: str = "\n\n",
        batch_size: int = 16,
        prepend_bos: bool = False,
    ):
        _check_model(model, tokenizer)
        self.model, self.tokenizer = model, tokenizer
        self.template = template
        self._context, self._space, self._after = _check_template(template)
        self.verbalizers = _verbalizers(labels)
        if len(self.verbalizers) < 2:
            raise ConfigError("a classifier needs at least two labels.")
        if len(set(self.verbalizers)) != len(self.verbalizers):
            raise ConfigError(f"label words repeat in {self.verbalizers}; use a distinct word "
                              "per class.")
        if not isinstance(separator, str):
            raise ConfigError("separator must be a str, e.g. '\\n\\n'.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        self.separator, self.batch_size, self.prepend_bos = separator, batch_size, prepend_bos
        if prepend_bos and tokenizer.bos_id is None:
            raise ConfigError("prepend_bos=True but the tokenizer has no bos token; leave it "
                              "False.")
        self._label_ids = self._encode_labels()
        self.demonstrations = self._arrange(self._demo_ids(_pairs(demonstrations)), order)
        self.order = order
        self._calibrator: Calibrator = NoCalibration().fit(np.zeros((1, self.n_classes)),
                                                           kind="logits")
        self._per_call = False  # batch calibration fitted on each call's texts

    # ------------------------------------------------------------------ set-up
    @property
    def n_classes(self) -> int:
        return len(self.verbalizers)

    def _encode_labels(self) -> list[list[int]]:
        ids = []
        for k, word in enumerate(self.verbalizers):
            tokens = self._encode(self._space + word, f"label word {word!r}")
            if not word.strip() or not self._encode(word, f"label word {word!r}"):
                raise ConfigError(
                    f"the label word {word!r} of class {k} tokenizes to nothing, so there is "
                    "nothing to score. Use a non-empty word the tokenizer knows, e.g. "
                    "'negative'."
                )
            ids.append(tokens)
        if len({tuple(t) for t in ids}) != len(ids):
            raise ConfigError(f"two label words tokenize to the same ids ({self.verbalizers}); "
                              "use words the tokenizer tells apart.")
        return ids

    def _encode(self, text: str, what: str) -> list[int]:
        try:
            return self.tokenizer.encode(text)
        except TokenizerError as err:
            raise TokenizerError(f"{what}: {err}") from None

    def _demo_ids(self, pairs: list[tuple[str, Any]]) -> list[tuple[str, int]]:
        out = []
        for text, label in pairs:
            if isinstance(label, str):
                if label not in self.verbalizers:
                    raise InputError(f"demonstration label {label!r} is not one of the label "
                                     f"words {self.verbalizers}.")
                label = self.verbalizers.index(label)
            label = int(label)
            if not 0 <= label < self.n_classes:
                raise InputError(f"demonstration label {label} is outside the classes 0 .. "
                                 f"{self.n_classes - 1}.")
            out.append((text, label))
        return out

    @staticmethod
    def _arrange(demos: list[tuple[str, int]], order: Any) -> list[tuple[str, int]]:
        if order is None:
            return demos
        if isinstance(order, int) and not isinstance(order, bool):
            shuffled = list(demos)
            random.Random(order).shuffle(shuffled)
            return shuffled
        order = list(order)
        if sorted(order) != list(range(len(demos))):
            raise InputError(f"order={order} is not a permutation of the {len(demos)} "
                             "demonstration indices; pass e.g. order=[2, 0, 1] or a seed.")
        return [demos[i] for i in order]

    def with_demonstrations(self, demonstrations: Any, order: Any = None) -> PromptClassifier:
        """A classifier like this one with other demonstrations (calibration not copied)."""
        return self._like(self.template, demonstrations, order)

    def with_template(self, template: str) -> PromptClassifier:
        """A classifier like this one with another template (same label words and
        demonstrations, in their current order; calibration not copied).

        >>> clf.with_template("Text: {text}\\nLabel: {label}").predict(texts)   # doctest: +SKIP
        """
        return self._like(template, self.demonstrations, None)

    def _like(self, template: str, demonstrations: Any, order: Any) -> PromptClassifier:
        labels = dict(zip(self.verbalizers, range(self.n_classes)))
        return PromptClassifier(self.model, self.tokenizer, template, labels,
                                demonstrations=demonstrations, order=order,
                                separator=self.separator, batch_size=self.batch_size,
                                prepend_bos=self.prepend_bos)

    # ------------------------------------------------------------------ prompts
    def _demo_block(self) -> str:
        demos = [_fill(self._context, t) + self._space + self.verbalizers[y] + self._after
                 for t, y in self.demonstrations]
        return "".join(d + self.separator for d in demos)

    def prompt(self, text: str, label: str | int | None = None) -> str:
        """The prompt a text is scored with (and, given a label, the scored continuation)."""
        out = self._demo_block() + _fill(self._context, text)
        if label is not None:
            word = label if isinstance(label, str) else self.verbalizers[int(label)]
            out += self._space + word
        return out

    def __repr__(self) -> str:
        return (f"PromptClassifier(template={self.template!r}, labels={self.verbalizers}, "
                f"{len(self.demonstrations)} demonstrations, calibration={self.calibration!r})")

    # ------------------------------------------------------------------ scoring
    def label_scores(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, K]`` summed log-probabilities of each label's tokens after each text's prompt
        (uncalibrated, not normalised over the labels)."""
        return self._run(texts)[0]

    def _run(self, texts: Sequence[str], hidden: bool = False,
             ) -> tuple[np.ndarray, np.ndarray | None]:
        texts = _check_texts(texts)
        block = self._demo_block()
        contexts = self.tokenizer.encode_batch([block + _fill(self._context, t) for t in texts])
        if self.prepend_bos:
            contexts = [[self.tokenizer.bos_id, *c] for c in contexts]
        empty = [i for i, c in enumerate(contexts) if not c]
        if empty:
            raise InputError(f"text {empty[0]} gives an empty prompt (no template text, no "
                             "demonstrations); add words before {text} in the template.")
        return _score(self.model, contexts, self._label_ids, self.batch_size, hidden=hidden)

    def _log_probs(self, texts: Sequence[str]) -> np.ndarray:
        return log_softmax(self.label_scores(texts))

    def hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, D]`` the model's last hidden state at the position that predicts the label
        (the end of each text's prompt): the inputs of hidden-state calibration.

        >>> clf.hidden_states(["a fine film"]).shape                    # doctest: +SKIP
        (1, 128)
        """
        return self._run(texts, hidden=True)[1]

    def sample_texts(self, n: int, *, seed: int = 0, max_new_tokens: int = 32,
                     temperature: float = 1.0) -> list[str]:
        """``n`` texts the model writes itself after the demonstrations and the template's
        words before ``{text}`` (sampling, row i seeded ``seed + i``), cut at the end of the
        line: the Monte Carlo inputs of generative calibration (Jiang et al. 2023).

        >>> clf.sample_texts(3, seed=0)                                  # doctest: +SKIP
        ['a film that never lands', 'great', 'the plot is thin']
        """
        from llmlab.generation import generate

        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise InputError(f"n_samples must be an int >= 1, got {n!r}.")
        before, after = self._context.split("{text}")
        prompt = self._demo_block() + before
        if not prompt and self.tokenizer.bos_id is None:
            raise InputError("generative calibration samples texts after the demonstrations "
                             "and the template's words before {text}; this prompt has neither "
                             "(and the tokenizer no bos token to start from). Add "
                             "demonstrations, or words before {text} in the template.")
        stops = list(dict.fromkeys(s for s in (after.strip(), "\n") if s))
        rows = generate(self.model, self.tokenizer, [prompt] * n,
                        max_new_tokens=max_new_tokens, temperature=temperature,
                        seed=[seed + i for i in range(n)], stop=stops)
        return [g.text.strip() for g in rows]

    # ------------------------------------------------------------------ calibration
    def _calibrated(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated log-probabilities ``[N, K]`` with the calibrator this classifier holds."""
        cal = self._calibrator
        if inputs_of(cal) == "hidden":
            return cal.transform_log_probs(self.hidden_states(texts))
        log_probs = self._log_probs(texts)
        if self._per_call:
            cal = _batch_prior(log_probs)
        return cal.transform_log_probs(log_probs, kind="logits")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, K]`` label probabilities, calibrated with the method set by :meth:`calibrate`."""
        return np.exp(self._calibrated(texts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """``[N]`` predicted class ids."""
        return self.predict_proba(texts).argmax(axis=1)

    def evaluate(self, texts: Sequence[str], labels: Any, *, n_bins: int = DEFAULT_BINS,
                 ) -> pl.DataFrame:
        """:func:`llmlab.evaluate` report of :meth:`predict_proba` on labelled texts."""
        return evaluate(self.predict_proba(texts), labels, n_bins=n_bins, kind="probs")

    @property
    def calibration(self) -> str:
        """The calibration in use: its method name ("none", "contextual", ...; see
        :data:`ALL_METHODS`), or the calibrator's class name."""
        return method_name(self._calibrator)

    @property
    def calibrator(self) -> Calibrator:
        """The :class:`~llmlab.calibrate.Calibrator` this classifier holds (save it with
        ``clf.calibrator.save(folder)``; batch calibration per call holds an unfitted one)."""
        return self._calibrator

    @property
    def prior(self) -> np.ndarray | None:
        """The estimated label prior ``p_bar`` that calibration divides by (None when the
        method has none, or for batch calibration estimated per call)."""
        return None if self._per_call else getattr(self._calibrator, "prior", None)

    def calibrate(
        self,
        method: str | Calibrator = "contextual",
        *,
        texts: Sequence[str] | None = None,
        labels: Any = None,
        content_free: Sequence[str] = CONTENT_FREE,
        n_samples: int = 20,
        seed: int = 0,
        **settings: Any,
    ) -> PromptClassifier:
        """Fit and hold a calibrator; returns self.

        ``method`` is a name of :data:`ALL_METHODS` ("none", "contextual", "domain", "batch",
        "generative", "prior", "prototypical", "linc", "supervised", "hidden", "temperature",
        "vector", "matrix", "isotonic", "histogram"), a class name of
        ``llmlab.calibrate.REGISTRY`` ("PlattScaling"), or a calibrator object (used as is
        when fitted, e.g. one from ``llmlab.calibrate.load``). ``settings`` go to its
        constructor. What it is fitted on:

        - "contextual": the ``content_free`` inputs in place of the text;
        - "domain": ``n_samples`` strings of random words from ``texts`` (seeded);
        - "generative": ``n_samples`` texts the model samples after the demonstrations;
        - "batch", "prior", "prototypical": unlabelled ``texts`` (batch without texts
          estimates its prior from each ``predict_proba`` call's texts);
        - the supervised ones ("linc", "supervised" and the post-hoc calibrators): labelled
          ``texts`` and ``labels`` (a held-out set, not the test set); "supervised" without
          them uses the demonstrations alone, as Gundem et al. do;
        - "hidden": the hidden states of labelled ``texts``.

        >>> clf.calibrate("temperature", texts=val.texts, labels=val.labels)  # doctest: +SKIP
        >>> clf.calibrate("prototypical", texts=unlabelled).predict(test.texts)  # doctest: +SKIP
        """
        cal = make_calibrator(method, self.n_classes, **settings)
        self._calibrator, self._per_call = self._fit(
            cal, texts, labels, content_free=content_free, n_samples=n_samples, seed=seed)
        return self

    def _fit(self, cal: Calibrator, texts: Sequence[str] | None, labels: Any, *,
             content_free: Sequence[str], n_samples: int, seed: int,
             scores_of_texts: np.ndarray | None = None) -> tuple[Calibrator, bool]:
        """(fitted calibrator, whether it is batch calibration per call).
        ``scores_of_texts``: the label log-probabilities of ``texts``, when already known."""
        if cal.is_fitted:
            if cal.n_classes != self.n_classes:
                raise InputError(f"this {type(cal).__name__} was fitted on {cal.n_classes} "
                                 f"classes; the classifier has {self.n_classes}. Use one "
                                 "fitted for this task.")
            return cal, False
        inputs = inputs_of(cal)
        if inputs in ("labelled", "hidden"):
            return self._fit_labelled(cal, texts, labels), False
        if inputs == "nothing":
            return cal.fit(np.zeros((1, self.n_classes)), kind="logits"), False
        if isinstance(cal, BatchCalibration) and texts is None:
            return cal, True
        if inputs == "texts" and scores_of_texts is not None:
            return cal.fit(scores_of_texts, kind="logits"), False
        fit_on = self._unlabelled_inputs(cal, texts, content_free=content_free,
                                         n_samples=n_samples, seed=seed)
        return cal.fit(self._log_probs(fit_on), kind="logits"), False

    def _unlabelled_inputs(self, cal: Calibrator, texts: Sequence[str] | None, *,
                           content_free: Sequence[str], n_samples: int, seed: int) -> list[str]:
        """The texts an unsupervised method's prior is estimated from."""
        inputs = inputs_of(cal)
        if inputs == "content_free":
            return _check_texts(content_free, "content_free")
        if inputs == "samples":
            return self.sample_texts(n_samples, seed=seed)
        if texts is None:
            what = ("draws random words from in-domain texts" if inputs == "domain" else
                    "is fitted on unlabelled in-domain texts")
            raise InputError(
                f"{_title(cal)} {what}: pass texts=unlabeled_texts (e.g. the texts to "
                f"classify), as in clf.calibrate({method_name(cal)!r}, texts=test_texts)."
            )
        texts = _check_texts(texts)
        return random_word_strings(texts, n_samples, seed) if inputs == "domain" else texts

    def _fit_labelled(self, cal: Calibrator, texts: Sequence[str] | None,
                      labels: Any) -> Calibrator:
        """A supervised method fitted on labelled texts (or SC on the demonstrations)."""
        if texts is None and labels is None and isinstance(cal, SupervisedCalibration):
            log_probs, y, groups = self._context_examples()
            return cal.fit(log_probs, y, kind="logits", groups=groups)
        if texts is None or labels is None:
            raise InputError(
                f"{_title(cal)} is fitted on labelled texts: pass texts= and labels= (a "
                "held-out set, not the test set), e.g. "
                f"clf.calibrate({method_name(cal)!r}, texts=val.texts, labels=val.labels)."
            )
        texts = _check_texts(texts)
        y = check_labels(labels, len(texts), self.n_classes)
        x = self.hidden_states(texts) if inputs_of(cal) == "hidden" else self._log_probs(texts)
        return cal.fit(x, y, kind="logits")

    def _context_examples(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each demonstration scored with the others as context, in their order and reversed:
        (label log-probs, labels, group = demonstration index)."""
        demos = self.demonstrations
        if len(demos) < 2:
            raise InputError(f"supervised calibration from the context needs at least 2 "
                             f"demonstrations (one to score, one as context), got "
                             f"{len(demos)}. Pass texts= and labels= instead.")
        rows, labels, groups = [], [], []
        for i, (text, label) in enumerate(demos):
            others = demos[:i] + demos[i + 1:]
            for context in (others, others[::-1]):
                rows.append(self.with_demonstrations(context)._log_probs([text])[0])
                labels.append(label)
                groups.append(i)
        return np.array(rows), np.array(labels), np.array(groups)

    # ------------------------------------------------------------------ reports
    def calibration_report(
        self,
        texts: Sequence[str],
        labels: Any,
        *,
        methods: Sequence[str | Calibrator] | str | Calibrator = METHODS,
        fit_texts: Sequence[str] | None = None,
        fit_labels: Any = None,
        folds: int = 5,
        content_free: Sequence[str] = CONTENT_FREE,
        n_samples: int = 20,
        seed: int = 0,
        n_bins: int = DEFAULT_BINS,
        smece: bool = True,
        level: float = 0.95,
        n_boot: int = 200,
    ) -> pl.DataFrame:
        """Every method side by side: accuracy, macro-F1, top-label ECE (``n_bins``
        equal-width bins), smooth ECE with its ``level`` bootstrap interval and NLL, one row
        per method (``methods="all"``: every method of
        :data:`ALL_METHODS`; default: :data:`METHODS`).

        The texts are scored once. Unsupervised methods: "domain" draws its random words from
        ``texts``; "batch", "prior" and "prototypical" are fitted on them. Supervised ones
        (and "hidden") are fitted on ``fit_texts`` / ``fit_labels`` when given, else
        cross-fitted: ``folds`` seeded folds of ``texts`` (stratified by label), each
        predicted by a calibrator fitted on the others, so no text is predicted by a map
        that saw its label. The smooth ECE is Blasiok and Nakkiran's (ICLR 2024), top-label,
        with a percentile bootstrap interval of ``n_boot`` resamples seeded with ``seed``
        (columns ``smece``, ``smece_low``, ``smece_high``; ``smece=False`` leaves them out).
        The classifier's own calibration is left as it is.

        Columns: ``method, accuracy, macro_f1, ece, smece, smece_low, smece_high, nll``.

        >>> clf.calibration_report(test.texts, test.labels, methods="all")  # doctest: +SKIP
        """
        texts = _check_texts(texts)
        y = check_labels(labels, len(texts), self.n_classes)
        test, held_out = _Features(self, texts, y), self._held_out(fit_texts, fit_labels)
        rows = []
        for method in _method_list(methods):
            cal = make_calibrator(method, self.n_classes)
            lp = self._report_log_probs(cal, test, held_out, folds=folds, seed=seed,
                                        content_free=content_free, n_samples=n_samples)
            rows.append({"method": method_name(cal),
                         **report_row(np.exp(lp), y, n_bins=n_bins, smece=smece, level=level,
                                      n_boot=n_boot, seed=seed)})
        return pl.DataFrame(rows)

    def _held_out(self, fit_texts: Any, fit_labels: Any) -> _Features | None:
        if fit_texts is None and fit_labels is None:
            return None
        if fit_texts is None or fit_labels is None:
            raise InputError("pass both fit_texts and fit_labels, or neither (then the "
                             "supervised methods are cross-fitted on the texts).")
        fit_texts = _check_texts(fit_texts, "fit_texts")
        return _Features(self, fit_texts, check_labels(fit_labels, len(fit_texts),
                                                       self.n_classes, "fit_labels"))

    def _report_log_probs(self, cal: Calibrator, test: _Features, held_out: _Features | None,
                          *, folds: int, content_free: Sequence[str], n_samples: int,
                          seed: int) -> np.ndarray:
        """Calibrated log-probabilities of the report's texts under one method."""
        supervised = inputs_of(cal) in ("labelled", "hidden")
        if supervised and not cal.is_fitted:
            if held_out is None:
                return _cross_fit(cal, test.of(cal), test.labels, folds, seed)
            cal = _fresh(cal).fit(held_out.of(cal), held_out.labels, kind="logits")
        else:
            cal, _ = self._fit(cal if cal.is_fitted else _fresh(cal), test.texts, None,
                               content_free=content_free, n_samples=n_samples, seed=seed,
                               scores_of_texts=test.of(cal))
        return cal.transform_log_probs(test.of(cal), kind="logits")

    def bias_report(
        self,
        texts: Sequence[str],
        *,
        content_free: Sequence[str] = CONTENT_FREE,
        n_samples: int = 20,
        n_orders: int = 6,
        seed: int = 0,
    ) -> pl.DataFrame:
        """The label biases of this prompt (uncalibrated), one row per diagnostic and label.

        - ``content_free_prior``: mean label probabilities for the content-free inputs
          (Zhao et al. 2021's contextual prior);
        - ``domain_prior``: the same for ``n_samples`` random-word strings from ``texts``
          (Fei et al. 2023's domain-context prior);
        - ``mean_prediction`` / ``predicted_share``: mean label probabilities over ``texts``
          and the share of texts predicted as each label;
        - ``majority``: over the demonstration sets with one demonstration left out, mean
          ``p(label)`` where the label is the strict majority minus where it is not
          (Zhao et al. 2021's majority-label bias; null when it is never or always so);
        - ``recency``: over ``n_orders`` seeded orders of the demonstrations, mean
          ``p(label)`` where the last demonstration has the label minus where it has not.

        Columns ``diagnostic, label, value, runs`` (``runs``: how many prompts it averages).
        :func:`plot_bias` (or :meth:`plot_bias`) draws it.

        >>> clf.bias_report(test.texts).filter(pl.col("diagnostic") == "recency")  # doctest: +SKIP
        """
        texts = _check_texts(texts)
        if not isinstance(n_orders, int) or isinstance(n_orders, bool) or n_orders < 1:
            raise InputError(f"n_orders must be an int >= 1, got {n_orders!r}.")
        rows: list[tuple[str, str, float | None, int]] = []

        def add(diagnostic: str, values: Sequence[float | None], runs: int) -> None:
            rows.extend((diagnostic, word, None if v is None else float(v), runs)
                        for word, v in zip(self.verbalizers, values))

        cf = _check_texts(content_free, "content_free")  # _log_probs: never calibrated
        add("content_free_prior", np.exp(self._log_probs(cf)).mean(0), len(cf))
        words = random_word_strings(texts, n_samples, seed)
        add("domain_prior", np.exp(self._log_probs(words)).mean(0), len(words))
        probs = np.exp(self._log_probs(texts))
        add("mean_prediction", probs.mean(0), 1)
        add("predicted_share", np.bincount(probs.argmax(1), minlength=self.n_classes)
            / len(texts), 1)
        demos = self.demonstrations
        subsets = [demos[:i] + demos[i + 1:] for i in range(len(demos))] if len(demos) > 1 else []
        add("majority", self._effect(texts, subsets, _majority), len(subsets))
        rng = random.Random(seed)
        orders = [rng.sample(demos, len(demos)) for _ in range(n_orders)] if demos else []
        add("recency", self._effect(texts, orders, lambda d: {d[-1][1]}), len(orders))
        return pl.DataFrame(rows, schema={"diagnostic": pl.String, "label": pl.String,
                                          "value": pl.Float64, "runs": pl.Int64}, orient="row")

    def plot_bias(self, texts: Sequence[str], **options: Any) -> Any:
        """The figure of :meth:`bias_report` (``options`` go to it): label priors beside the
        majority and recency effects.

        >>> clf.plot_bias(test.texts)                                  # doctest: +SKIP
        """
        return plot_bias(self.bias_report(texts, **options))

    def _effect(self, texts: list[str], sets: list[list[tuple[str, int]]],
                marked: Any) -> list[float | None]:
        """Per label: mean p(label) over the sets that mark it minus over those that do not."""
        if not sets:
            return [None] * self.n_classes
        means = np.stack([np.exp(self.with_demonstrations(d)._log_probs(texts)).mean(0)
                          for d in sets])
        out: list[float | None] = []
        for k in range(self.n_classes):
            on = np.array([k in marked(d) for d in sets])
            out.append(float(means[on, k].mean() - means[~on, k].mean())
                       if on.any() and not on.all() else None)
        return out

    def spread(
        self,
        texts: Sequence[str],
        labels: Any,
        *,
        seeds: int | Sequence[int] = 5,
        pool: Any = None,
        k: int | None = None,
        templates: Sequence[str] | None = None,
        methods: Sequence[str] | str = METHODS,
        per_run: bool = False,
        **report_options: Any,
    ) -> pl.DataFrame:
        """How much the template, the choice and the order of demonstrations move the results.

        For each template (``templates``; default: this classifier's) and each seed, either
        re-orders this classifier's demonstrations (``pool=None``: the order) or draws ``k``
        new ones from ``pool`` (the demonstrations; default ``k``: as many as now), then runs
        :meth:`calibration_report`. Returns per method (and template, when ``templates`` are
        given) the mean and standard deviation (``ddof=1``) of every metric over the runs,
        or with ``per_run=True`` every run's row (with its ``seed``).
        """
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        if not seeds:
            raise InputError("seeds must name at least one run, e.g. seeds=5.")
        if templates is not None and (isinstance(templates, str) or not list(templates)):
            raise InputError("templates must be a list of templates, e.g. ['{text} {label}', "
                             "'Review: {text}\\nSentiment: {label}'].")
        k = len(self.demonstrations) if k is None else k
        frames = []
        for template in (templates or [None]):
            base = self if template is None else self.with_template(template)
            for seed in seeds:
                if pool is None:
                    clf = base.with_demonstrations(base.demonstrations, order=seed)
                else:
                    clf = base.with_demonstrations(sample_demonstrations(pool, k, seed))
                report = clf.calibration_report(texts, labels, methods=methods, **report_options)
                report = report.with_columns(pl.lit(seed).alias("seed"))
                if template is not None:
                    report = report.with_columns(pl.lit(template).alias("template"))
                frames.append(report)
        metrics = [c for c in frames[0].columns if c not in ("method", "seed", "template")]
        keys = ["template", "method"] if templates else ["method"]
        runs = pl.concat(frames).select(*keys[:-1], "seed", "method", *metrics)
        if per_run:
            return runs
        return runs.group_by(keys, maintain_order=True).agg(
            *[pl.col(m).mean().alias(f"{m}_mean") for m in metrics],
            *[pl.col(m).std().alias(f"{m}_std") for m in metrics],
            pl.len().alias("runs"),
        )


class _Features:
    """What the methods of a report read of some texts, each computed once on first use:
    label log-probabilities, and hidden states when a method needs them."""

    def __init__(self, clf: PromptClassifier, texts: list[str], labels: np.ndarray):
        self.clf, self.texts, self.labels = clf, texts, labels
        self._cache: dict[str, np.ndarray] = {}

    def of(self, cal: Calibrator) -> np.ndarray:
        """The inputs ``cal`` reads: hidden states ``[N, D]`` or label log-probs ``[N, K]``."""
        key = "hidden" if inputs_of(cal) == "hidden" else "scores"
        if key not in self._cache:
            scores, hidden = self.clf._run(self.texts, hidden=key == "hidden")
            self._cache["scores"] = log_softmax(scores)
            if hidden is not None:
                self._cache["hidden"] = hidden
        return self._cache[key]


def _method_list(methods: Any) -> list[str | Calibrator]:
    if isinstance(methods, str) and methods == "all":
        return list(ALL_METHODS)
    if isinstance(methods, (str, Calibrator)):
        return [methods]
    methods = list(methods)
    if not methods:
        raise InputError(f"methods is empty; pass method names, e.g. methods={list(METHODS)} "
                         "or methods='all'.")
    return methods


def _fresh(cal: Calibrator) -> Calibrator:
    """An unfitted calibrator with ``cal``'s settings (the caller's object is not refitted)."""
    return type(cal)(**cal.settings())


def _title(cal: Calibrator) -> str:
    return getattr(cal, "title", type(cal).__name__)


def _majority(demos: list[tuple[str, int]]) -> set[int]:
    """The label that strictly outnumbers every other among ``demos`` (or none)."""
    counts = np.bincount([y for _, y in demos])
    top = np.flatnonzero(counts == counts.max())
    return {int(top[0])} if len(top) == 1 else set()


def _batch_prior(log_probs: np.ndarray, stacklevel: int = 4) -> BatchCalibration:
    """Batch calibration fitted on the texts at hand (warned when they are few)."""
    if len(log_probs) < 2 * log_probs.shape[1]:
        warnings.warn(
            f"batch calibration estimated the label prior from only {len(log_probs)} "
            "texts; pass the whole test set in one call, or fix the prior with "
            "clf.calibrate('batch', texts=unlabeled_texts).",
            stacklevel=stacklevel,
        )
    return BatchCalibration().fit(log_probs, kind="logits")


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold id ``[N]`` of each example: shuffled with ``seed``, then dealt out class by class
    so that every fold holds its share of each class.

    >>> stratified_folds(np.array([0, 0, 1, 1]), 2, seed=0).tolist()
    [0, 1, 0, 1]
    """
    order = np.random.default_rng(seed).permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    fold = np.empty(len(labels), dtype=np.int64)
    fold[order] = np.arange(len(labels)) % folds
    return fold


def _cross_fit(cal: Calibrator, x: np.ndarray, y: np.ndarray, folds: int,
               seed: int) -> np.ndarray:
    """Calibrated log-probs of each row from a calibrator fitted on the other folds."""
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise InputError(f"folds must be an int >= 2, got {folds!r}.")
    if len(y) < folds:
        raise InputError(f"cross-fitting {_title(cal)} on {folds} folds needs at least "
                         f"{folds} labelled texts, got {len(y)}. Pass more texts, fewer folds, "
                         "or fit_texts= and fit_labels=.")
    fold = stratified_folds(y, folds, seed)
    out = None
    for f in range(folds):
        held = fold == f
        try:
            fitted = _fresh(cal).fit(x[~held], y[~held], kind="logits")
        except InputError as err:
            raise InputError(
                f"cross-fitting {_title(cal)} on {folds} folds of {len(y)} labelled texts: "
                f"fold {f}'s calibrator could not be fitted on the other folds ({err}) Pass "
                "more labelled texts (several of each class), fewer folds=, or a held-out "
                "set with fit_texts= and fit_labels=."
            ) from None
        lp = fitted.transform_log_probs(x[held], kind="logits")
        out = np.zeros((len(y), lp.shape[1])) if out is None else out
        out[held] = lp
    return out


def report_row(probs: np.ndarray, labels: np.ndarray, *, n_bins: int = DEFAULT_BINS,
               smece: bool = True, level: float = 0.95, n_boot: int = 200,
               seed: int = 0) -> dict[str, float]:
    """One row of :meth:`PromptClassifier.calibration_report`: accuracy, macro_f1, ece
    (top-label, ``n_bins`` equal-width bins), then with ``smece=True`` the top-label smooth
    ECE and its bootstrap interval at ``level`` (smece, smece_low, smece_high;
    :func:`llmlab.metrics.smooth_ece_interval`), then nll.

    >>> row = report_row(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), smece=False)
    >>> row["accuracy"], row["ece"]
    (0.5, 0.45)
    """
    report = evaluate(probs, labels, n_bins=n_bins, kind="probs")
    row = {"accuracy": report_value(report, "accuracy"),
           "macro_f1": report_value(report, "f1", "macro"),
           "ece": report_value(report, "ece", "top_label", "equal_width")}
    if smece:
        value, low, high = smooth_ece_interval(probs, labels, level=level, n_boot=n_boot,
                                               seed=seed, kind="probs", variant="top_label")
        row.update(smece=value, smece_low=low, smece_high=high)
    row["nll"] = report_value(report, "nll")
    return row


def plot_bias(report: pl.DataFrame) -> Any:
    """Bars of a :meth:`PromptClassifier.bias_report`: the label priors (left) and the
    majority / recency effects (right), one colour per label. Returns an InlineFigure."""
    from llmlab._figures import InlineFigure

    labels = list(dict.fromkeys(report["label"].to_list()))
    panels = (("label priors", ["content_free_prior", "domain_prior", "mean_prediction",
                                "predicted_share"]),
              ("demonstration effects", ["majority", "recency"]))
    fig = InlineFigure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / max(len(labels), 1)
    for ax, (title, names) in zip(axes, panels):
        for j, label in enumerate(labels):
            values = [report.filter((pl.col("diagnostic") == d) & (pl.col("label") == label))
                      ["value"].fill_null(float("nan"))[0] for d in names]
            ax.bar(np.arange(len(names)) + (j - (len(labels) - 1) / 2) * width, values,
                   width, label=label)
        ax.set_xticks(np.arange(len(names)), [n.replace("_", "\n") for n in names])
        ax.set_title(title)
        ax.axhline(0, color="#888", lw=0.8)
    axes[0].axhline(1 / max(len(labels), 1), color="#888", ls="--", lw=0.8)
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def random_word_strings(texts: Sequence[str], n_samples: int, seed: int) -> list[str]:
    """``n_samples`` strings of random words from ``texts``, each as long (in words) as an
    average text: the content-free inputs of domain-context calibration (Fei et al. 2023)."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise InputError(f"n_samples must be an int >= 1, got {n_samples!r}.")
    words = [w for t in texts for w in t.split()]
    if not words:
        raise InputError("the texts hold no words to sample for domain-context calibration; "
                         "pass non-empty in-domain texts.")
    length = max(1, round(len(words) / len(texts)))
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=length)) for _ in range(n_samples)]


def _common_prefix(rows: list[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for row in rows[1:]:
        i = 0
        while i < n and row[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


@torch.inference_mode()
def _score(model: torch.nn.Module, contexts: list[list[int]], labels: list[list[int]],
           batch_size: int, *, hidden: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Summed log-probs ``[N, K]`` of each label's tokens after each context, and with
    ``hidden=True`` the last hidden state ``[N, D]`` at each context's last position (the one
    that predicts the label's first token).

    The prefix every context shares (the demonstrations) is run once into a KV cache of one
    row; each batch copies it into a cache of B rows, appends its texts' remaining tokens
    (left-padded: padding in the middle of a row is masked like any padding, and positions
    count real tokens only), reads the first label token's log-prob from the last position,
    then runs each longer label's tokens and rewinds the cache.
    """
    from llmlab.models import KVCache

    cfg = model.config
    # keep >= 1 token per text, so every text's last position is computed in its own batch
    shared = min(_common_prefix(contexts), min(len(c) for c in contexts) - 1)
    longest = max(len(c) for c in contexts) + max(len(t) for t in labels) - 1
    if longest > cfg.context_length:
        raise InputError(
            f"the longest prompt plus label is {longest} tokens, more than the model's "
            f"context_length {cfg.context_length}. Use fewer or shorter demonstrations, or "
            "shorten the texts."
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        prefix = None
        if shared:
            prefix = KVCache.for_model(model, 1, max_len=longest)
            model(torch.tensor([contexts[0][:shared]], device=device), cache=prefix)
        scores, states = [], []
        for start in range(0, len(contexts), batch_size):
            rows = [c[shared:] for c in contexts[start:start + batch_size]]
            batch, state = _score_batch(model, rows, labels, prefix=prefix, shared=shared,
                                        max_len=longest, device=device, hidden=hidden)
            scores.append(batch)
            states.append(state)
        return np.concatenate(scores), (np.concatenate(states) if hidden else None)
    finally:
        model.train(was_training)


def _score_batch(model: torch.nn.Module, rows: list[list[int]], labels: list[list[int]], *,
                 prefix: Any, shared: int, max_len: int, device: torch.device,
                 hidden: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    from llmlab.models import KVCache

    B, width = len(rows), max(len(r) for r in rows)
    cache = KVCache.for_model(model, B, max_len=max_len)
    if prefix is not None:
        for mine, theirs in ((cache.keys, prefix.keys), (cache.values, prefix.values)):
            for buf, src in zip(mine, theirs):
                buf[:, :, :shared] = src[:, :, :shared]
        cache.length = shared
    ids = torch.zeros(B, width, dtype=torch.long)
    mask = torch.zeros(B, shared + width, dtype=torch.bool)
    mask[:, :shared] = True
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, shared + width - len(r):] = True
    ids, mask = ids.to(device), mask.to(device)
    out = model(ids, attention_mask=mask, cache=cache)
    state = _last_hidden(model, out) if hidden else None
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]
    scores = torch.stack([first[:, t[0]] for t in labels], dim=1).double()  # [B, K]
    filled = cache.length
    for k, tokens in enumerate(labels):
        if len(tokens) == 1:
            continue
        feed = torch.tensor(tokens[:-1], device=device).expand(B, -1)
        full = torch.cat([mask, torch.ones(B, len(tokens) - 1, dtype=torch.bool,
                                           device=device)], dim=1)
        lp = torch.log_softmax(model(feed, attention_mask=full, cache=cache).logits.float(), -1)
        target = torch.tensor(tokens[1:], device=device)
        scores[:, k] += lp.gather(-1, target.expand(B, -1).unsqueeze(-1)).squeeze(-1).sum(1)
        cache.length = filled  # rewind: the next label overwrites these positions
    result = scores.cpu().numpy()
    if not np.isfinite(result).all():
        raise InputError("the model gave non-finite (NaN or inf) label log-probabilities; "
                         "check that its weights are finite (a diverged run? reload the last "
                         "good checkpoint).")
    return result, state


def _last_hidden(model: torch.nn.Module, out: Any) -> np.ndarray:
    """``[B, D]`` the final hidden state at the last position (left padding: every row's
    last real token), or a clear error for a model whose forward gives none."""
    h = getattr(out, "last_hidden_state", None)
    if h is None:
        raise InputError(
            f"this {type(model).__name__} gives no hidden states (its forward returns "
            "last_hidden_state=None), and hidden-state calibration reads them. Use an llmlab "
            "model (llmlab.build_model or llmlab.load), or a method that needs only the label "
            "scores, e.g. clf.calibrate('linc', texts=..., labels=...)."
        )
    h = h[:, -1].double().cpu().numpy()
    if not np.isfinite(h).all():
        raise InputError("the model gave non-finite (NaN or inf) hidden states; check that "
                         "its weights are finite (a diverged run? reload the last good "
                         "checkpoint).")
    return h
