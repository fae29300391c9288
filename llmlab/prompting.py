"""Few-shot classification with a causal language model, and the calibration of its label
probabilities (contextual, domain-context and batch calibration).

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

Calibration (all three divide the label probabilities by an estimated prior ``p_bar`` and
renormalise, i.e. subtract ``log p_bar`` from the label log-probabilities):

- ``"contextual"`` (Zhao et al. 2021): ``p_bar`` = the mean label probabilities of
  content-free inputs ("N/A", "", "[MASK]") put in the prompt in place of the text; the
  calibrated probabilities are ``diag(p_bar)^-1 p``, renormalised.
- ``"domain"`` (Fei et al. 2023): the content-free inputs are strings of random words drawn
  from in-domain unlabeled texts (as long as an average text), averaged over ``n_samples``.
- ``"batch"`` (Zhou et al. 2023): ``log p_bar`` = the log of the mean over the batch of test
  texts of the label probabilities (the paper's estimate of the contextual prior).
  It needs no extra inputs but a batch: by default the texts of each ``predict_proba`` call
  (pass the test set in one call), or a fixed set given to ``calibrate("batch", texts=...)``.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from llmlab.errors import ConfigError, InputError, TokenizerError
from llmlab.metrics import DEFAULT_BINS, evaluate, to_wide

__all__ = ["CONTENT_FREE", "METHODS", "PromptClassifier", "sample_demonstrations"]

CONTENT_FREE = ("N/A", "", "[MASK]")
METHODS = ("none", "contextual", "domain", "batch")


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
        self._method = "none"
        self._log_prior: np.ndarray | None = None  # None with "batch": from each call's texts

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
        labels = dict(zip(self.verbalizers, range(self.n_classes)))
        return PromptClassifier(self.model, self.tokenizer, self.template, labels,
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
                f"{len(self.demonstrations)} demonstrations, calibration={self._method!r})")

    # ------------------------------------------------------------------ scoring
    def label_scores(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, K]`` summed log-probabilities of each label's tokens after each text's prompt
        (uncalibrated, not normalised over the labels)."""
        texts = _check_texts(texts)
        block = self._demo_block()
        contexts = self.tokenizer.encode_batch([block + _fill(self._context, t) for t in texts])
        if self.prepend_bos:
            contexts = [[self.tokenizer.bos_id, *c] for c in contexts]
        empty = [i for i, c in enumerate(contexts) if not c]
        if empty:
            raise InputError(f"text {empty[0]} gives an empty prompt (no template text, no "
                             "demonstrations); add words before {text} in the template.")
        return _score(self.model, contexts, self._label_ids, self.batch_size)

    def _log_probs(self, texts: Sequence[str]) -> np.ndarray:
        return _log_softmax(self.label_scores(texts))

    def _apply(self, log_probs: np.ndarray, log_prior: np.ndarray | None,
               method: str) -> np.ndarray:
        if method == "none":
            return np.exp(log_probs)
        if log_prior is None:  # batch calibration over the texts at hand
            if len(log_probs) < 2 * log_probs.shape[1]:
                warnings.warn(
                    f"batch calibration estimated the label prior from only {len(log_probs)} "
                    "texts; pass the whole test set in one call, or fix the prior with "
                    "clf.calibrate('batch', texts=unlabeled_texts).",
                    stacklevel=3,
                )
            log_prior = _log_mean_prob(log_probs)
        return np.exp(_log_softmax(log_probs - log_prior))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, K]`` label probabilities, calibrated with the method set by :meth:`calibrate`."""
        return self._apply(self._log_probs(texts), self._log_prior, self._method)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """``[N]`` predicted class ids."""
        return self.predict_proba(texts).argmax(axis=1)

    def evaluate(self, texts: Sequence[str], labels: Any, *, n_bins: int = DEFAULT_BINS,
                 ) -> pl.DataFrame:
        """:func:`llmlab.evaluate` report of :meth:`predict_proba` on labelled texts."""
        return evaluate(self.predict_proba(texts), labels, n_bins=n_bins, kind="probs")

    # ------------------------------------------------------------------ calibration
    @property
    def calibration(self) -> str:
        """The calibration in use: "none", "contextual", "domain" or "batch"."""
        return self._method

    @property
    def prior(self) -> np.ndarray | None:
        """The estimated label prior ``p_bar`` that calibration divides by (None when
        uncalibrated, or for batch calibration estimated per call)."""
        return None if self._log_prior is None else np.exp(self._log_prior)

    def calibrate(
        self,
        method: str = "contextual",
        *,
        texts: Sequence[str] | None = None,
        content_free: Sequence[str] = CONTENT_FREE,
        n_samples: int = 20,
        seed: int = 0,
    ) -> PromptClassifier:
        """Set the calibration ("none", "contextual", "domain", "batch"); returns self.

        ``texts`` are unlabeled in-domain texts: required for "domain" (the random words are
        drawn from them); optional for "batch" (then the prior is estimated once from them
        instead of from each call's texts). ``content_free`` are the inputs of "contextual";
        ``n_samples`` and ``seed`` control "domain".
        """
        log_prior, method = self._estimate(method, texts, content_free, n_samples, seed)
        self._method, self._log_prior = method, log_prior
        return self

    def _estimate(self, method: str, texts: Sequence[str] | None, content_free: Sequence[str],
                  n_samples: int, seed: int) -> tuple[np.ndarray | None, str]:
        if method not in METHODS:
            raise InputError(f"unknown calibration {method!r}; use one of {METHODS}.")
        if method == "none":
            return None, method
        if method == "batch":
            return (None if texts is None else _log_mean_prob(self._log_probs(texts))), method
        if method == "contextual":
            inputs = _check_texts(content_free, "content_free")
        else:
            if texts is None:
                raise InputError(
                    "domain-context calibration draws random words from in-domain texts: pass "
                    "texts=unlabeled_texts (e.g. the texts to classify), as in "
                    "clf.calibrate('domain', texts=test_texts)."
                )
            inputs = random_word_strings(_check_texts(texts), n_samples, seed)
        return _log_mean_prob(self._log_probs(inputs)), method

    def calibration_report(
        self,
        texts: Sequence[str],
        labels: Any,
        *,
        methods: Sequence[str] = METHODS,
        content_free: Sequence[str] = CONTENT_FREE,
        n_samples: int = 20,
        seed: int = 0,
        n_bins: int = DEFAULT_BINS,
    ) -> pl.DataFrame:
        """Accuracy, macro-F1, top-label ECE and NLL for each calibration method, one row each.

        The texts are scored once; "domain" draws its random words from ``texts`` and
        "batch" uses them as the batch. The classifier's own calibration is left as it is.
        """
        texts = _check_texts(texts)
        log_probs = self._log_probs(texts)
        rows = []
        for method in methods:
            words = texts if method == "domain" else None
            log_prior, _ = self._estimate(method, words, content_free, n_samples, seed)
            probs = self._apply(log_probs, log_prior, method)
            wide = to_wide(evaluate(probs, labels, n_bins=n_bins, kind="probs"))
            rows.append({
                "method": method,
                "accuracy": wide["accuracy"].item(),
                "macro_f1": wide["f1_macro"].item(),
                "ece": wide[f"ece_top_label_equal_width{n_bins}"].item(),
                "nll": wide["nll"].item(),
            })
        return pl.DataFrame(rows)

    def spread(
        self,
        texts: Sequence[str],
        labels: Any,
        *,
        seeds: int | Sequence[int] = 5,
        pool: Any = None,
        k: int | None = None,
        methods: Sequence[str] = METHODS,
        per_run: bool = False,
        **report_options: Any,
    ) -> pl.DataFrame:
        """How much the choice and order of demonstrations moves the results.

        For each seed, either re-orders this classifier's demonstrations (``pool=None``) or
        draws ``k`` new ones from ``pool`` (default ``k``: as many as now), then runs
        :meth:`calibration_report`. Returns per method the mean and standard deviation
        (``ddof=1``) of accuracy, macro-F1, ECE and NLL over the runs, or with
        ``per_run=True`` every run's row (with its ``seed``).
        """
        seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
        if not seeds:
            raise InputError("seeds must name at least one run, e.g. seeds=5.")
        k = len(self.demonstrations) if k is None else k
        frames = []
        for seed in seeds:
            if pool is None:
                clf = self.with_demonstrations(self.demonstrations, order=seed)
            else:
                clf = self.with_demonstrations(sample_demonstrations(pool, k, seed))
            report = clf.calibration_report(texts, labels, methods=methods, **report_options)
            frames.append(report.with_columns(pl.lit(seed).alias("seed")))
        runs = pl.concat(frames).select("seed", "method", "accuracy", "macro_f1", "ece", "nll")
        if per_run:
            return runs
        metrics = ["accuracy", "macro_f1", "ece", "nll"]
        return runs.group_by("method", maintain_order=True).agg(
            *[pl.col(m).mean().alias(f"{m}_mean") for m in metrics],
            *[pl.col(m).std().alias(f"{m}_std") for m in metrics],
            pl.len().alias("runs"),
        )


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


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


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
           batch_size: int) -> np.ndarray:
    """Summed log-probs ``[N, K]`` of each label's tokens after each context.

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
        out = np.zeros((len(contexts), len(labels)))
        for start in range(0, len(contexts), batch_size):
            rows = [c[shared:] for c in contexts[start:start + batch_size]]
            out[start:start + len(rows)] = _score_batch(
                model, rows, labels, prefix=prefix, shared=shared, max_len=longest, device=device)
        return out
    finally:
        model.train(was_training)


def _score_batch(model: torch.nn.Module, rows: list[list[int]], labels: list[list[int]], *,
                 prefix: Any, shared: int, max_len: int, device: torch.device) -> np.ndarray:
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
    logits = model(ids, attention_mask=mask, cache=cache).logits[:, -1]
    first = torch.log_softmax(logits.float(), dim=-1)  # [B, V]
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
        raise InputError("the model gave non-finite label log-probabilities; check that its "
                         "weights are finite (a diverged run?).")
    return result


def _log_mean_prob(log_probs: np.ndarray) -> np.ndarray:
    """``log(mean_i exp(log_probs[i]))`` per label, computed stably."""
    top = log_probs.max(axis=0)
    return top + np.log(np.exp(log_probs - top).mean(axis=0))
