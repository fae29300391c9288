"""What every post-hoc calibrator shares: checked ``fit`` / ``transform``, and saving as JSON +
safetensors (never pickle), alone or into a run's artifacts.

A saved calibrator is a folder::

    calibrator.json           {"format": "llmlab-calibrator", "format_version": 1, "type": ...,
                               "settings": {...}, "state": {...}, "arrays": [...]}
    calibrator.safetensors    its fitted arrays (temperature, weights, bins...)

The arrays are written first and the JSON last, each atomically, so a folder with a
``calibrator.json`` is always complete.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from llmlab._files import write_atomic, write_text_atomic
from llmlab.errors import CheckpointError, InputError
from llmlab.formats import Format
from llmlab.metrics import LOG_EPS, Kind, Scores, prepare

FORMAT = "llmlab-calibrator"
FORMAT_VERSION = 1
CALIBRATOR_FORMAT = Format(FORMAT, FORMAT_VERSION, what="an llmlab calibrator",
                           redo="fit and save the calibrator again")
META_FILE = "calibrator.json"
ARRAYS_FILE = "calibrator.safetensors"
RUN_SUBDIR = "calibrators"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: type name -> class, filled by ``Calibrator.__init_subclass__``
REGISTRY: dict[str, type[Calibrator]] = {}


class Calibrator:
    """Base class: subclasses implement ``_fit(scores)`` and ``_transform(scores)``.

    ``fit`` and ``transform`` take logits or probabilities exactly as
    :func:`llmlab.evaluate` does (``kind="auto"`` detects which). ``transform`` returns
    calibrated probabilities in the caller's layout: ``[N, K]``, or ``[N]`` probabilities of
    class 1 when the input was one binary score per example; a NumPy array for NumPy or list
    input, a tensor (same device) for a tensor.
    """

    #: whether the method only works on two-class problems
    binary_only: ClassVar[bool] = False

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Every subclass is registered by name (what ``load`` reads back), except abstract
        bases declared ``class Base(Calibrator, register=False)``."""
        super().__init_subclass__(**kwargs)
        if register:
            REGISTRY[cls.__name__] = cls

    def __init__(self) -> None:
        self.n_classes: int | None = None
        self.fit_kind: str | None = None
        self.fit_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ the verbs
    def fit(self, scores: Any, labels: Any, *, kind: Kind = "auto") -> Calibrator:
        """Learn the map on a held-out calibration set (never the test set); returns self."""
        s = prepare(scores, labels, kind=kind)
        self._check_classes(s)
        self._fit(s)
        self.n_classes, self.fit_kind = s.n_classes, s.kind
        self.fit_info = {"n": len(s), "binary_1d": s.binary_1d}
        return self

    def _check_classes(self, s: Scores) -> None:
        """Refuse labels of a single class, and more than two classes for binary methods."""
        present = np.unique(s.labels)
        if len(present) < 2:
            raise InputError(
                f"the calibration labels hold a single class ({int(present[0])}) in "
                f"{len(s.labels)} examples; nothing can be learned about the others. Fit on a "
                "held-out set with examples of at least two classes (e.g. a stratified split "
                "of the validation data)."
            )
        if self.binary_only and s.n_classes != 2:
            raise InputError(
                f"{type(self).__name__} is for two-class problems; the scores have "
                f"{s.n_classes} classes. Use TemperatureScaling or VectorScaling, or "
                "IsotonicCalibration / HistogramBinning (one-vs-rest)."
            )

    def transform(self, scores: Any, *, kind: Kind = "auto") -> Any:
        """Calibrated probabilities for ``scores`` (see the class docstring for the layout)."""
        s = self._checked(scores, kind)
        probs = self._transform(s)
        return _like_input(scores, probs[:, 1] if s.binary_1d else probs)

    def transform_log_probs(self, scores: Any, *, kind: Kind = "auto") -> np.ndarray:
        """Calibrated log-probabilities ``[N, K]`` (NumPy): what a
        :class:`~llmlab.PromptClassifier` reads from the calibrator it holds.

        >>> cal.transform_log_probs(test_logits).argmax(1)               # doctest: +SKIP
        """
        return self._log_transform(self._checked(scores, kind))

    def _checked(self, scores: Any, kind: Kind) -> Scores:
        self._check_fitted()
        s = prepare(scores, kind=kind)
        if s.n_classes != self.n_classes:
            raise InputError(
                f"{type(self).__name__} was fitted on {self.n_classes} classes but these scores "
                f"have {s.n_classes}. Transform scores of the same model and task it was "
                "fitted on."
            )
        if self.depends_on_kind and s.kind != self.fit_kind:
            warnings.warn(
                f"{type(self).__name__} was fitted on {self.fit_kind} and is now given "
                f"{s.kind}; its map depends on which (logits are not normalised), so the "
                "result differs from what it learned. Pass the same kind to fit and transform.",
                stacklevel=3,
            )
        return s

    def _log_transform(self, s: Scores) -> np.ndarray:
        """Calibrated log-probabilities; subclasses that compute them directly override it."""
        return np.log(np.clip(self._transform(s), LOG_EPS, 1.0))

    def fit_transform(self, scores: Any, labels: Any, *, kind: Kind = "auto") -> Any:
        """``fit`` then ``transform`` on the same scores (for plots; evaluate on other data)."""
        return self.fit(scores, labels, kind=kind).transform(scores, kind=kind)

    #: whether the fitted map reads logits as given (so logits vs probabilities matters)
    depends_on_kind: ClassVar[bool] = False

    # ------------------------------------------------------------------ for subclasses
    def _fit(self, s: Scores) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, s: Scores) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Constructor arguments, JSON-able (``type(self)(**settings)`` rebuilds it unfitted)."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (saved to safetensors)."""
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the fitted state from ``arrays()`` output."""

    # ------------------------------------------------------------------ helpers
    @property
    def is_fitted(self) -> bool:
        return self.n_classes is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise InputError(f"{type(self).__name__} is not fitted yet. Call "
                             ".fit(val_scores, val_labels) on a held-out set first.")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        state = f"fitted on {self.fit_info.get('n')} examples, {self.n_classes} classes" if (
            self.is_fitted) else "not fitted"
        return f"{type(self).__name__}({args})  # {state}"

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the fitted calibrator into folder ``path`` (JSON + safetensors); returns it.

        >>> cal.save("calibrators/ts")                                   # doctest: +SKIP
        >>> llmlab.calibrate.load("calibrators/ts").transform(test_logits) # doctest: +SKIP
        """
        self._check_fitted()
        folder = Path(path)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file; a calibrator is saved as a folder. Pass a "
                             "folder path (it is created).")
        if folder.is_dir() and any(folder.iterdir()) and not (folder / META_FILE).exists():
            raise InputError(f"{folder} is a non-empty folder that holds no calibrator; refusing "
                             "to write into it. Pass a new or empty folder.")
        from safetensors.numpy import save_file

        arrays = {k: np.ascontiguousarray(v) for k, v in self.arrays().items()}
        write_atomic(folder / ARRAYS_FILE, lambda tmp: save_file(arrays, str(tmp)))
        meta = {
            **CALIBRATOR_FORMAT.header(), "type": type(self).__name__,
            "settings": self.settings(),
            "state": {"n_classes": self.n_classes, "fit_kind": self.fit_kind,
                      "fit_info": self.fit_info},
            "arrays": sorted(arrays),
        }
        write_text_atomic(folder / META_FILE, json.dumps(meta, indent=1))
        return folder

    def save_to_run(self, run: Any, name: str) -> Path:
        """Save under ``run.artifacts_dir / "calibrators" / name``; returns the folder.

        >>> cal.save_to_run(run, "temperature")                          # doctest: +SKIP
        """
        return self.save(run_path(run, name))

    @classmethod
    def load(cls, path: str | Path) -> Calibrator:
        """A saved calibrator, refused unless it is a ``cls`` (any kind on ``Calibrator``).

        >>> llmlab.calibrate.ContextualCalibration.load("calibrators/cc")  # doctest: +SKIP
        """
        cal = load(path)
        if not isinstance(cal, cls):
            raise CheckpointError(
                f"{path} holds a {type(cal).__name__}, not a {cls.__name__}. Load it with "
                f"llmlab.calibrate.load(path) (any kind) or {type(cal).__name__}.load(path), "
                f"or pass the folder of a saved {cls.__name__}."
            )
        return cal


def run_path(run: Any, name: str) -> Path:
    """Folder of calibrator ``name`` in ``run`` (a :class:`~llmlab.runs.Run`)."""
    if not hasattr(run, "artifacts_dir"):
        raise InputError(f"expected an llmlab run (with .artifacts_dir), got "
                         f"{type(run).__name__}; get one with llmlab.runs.get(run_id) or from "
                         "Trainer.fit().")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"calibrator name {name!r} must be 1-100 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit (it becomes a folder name).")
    return Path(run.artifacts_dir) / RUN_SUBDIR / name


def load(path: str | Path) -> Calibrator:
    """A calibrator saved by :meth:`Calibrator.save` (the folder or its ``calibrator.json``).

    >>> cal = llmlab.calibrate.load(run.artifacts_dir / "calibrators" / "temperature")  # doctest: +SKIP
    """
    folder = Path(path)
    if folder.name == META_FILE:
        folder = folder.parent
    meta_file = folder / META_FILE
    if not meta_file.is_file():
        raise CheckpointError(f"{folder} holds no {META_FILE}; pass a folder written by "
                              "cal.save(path) or cal.save_to_run(run, name).")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{meta_file} is not valid JSON ({err}); the calibrator is "
                              "corrupt. Fit and save it again.") from None
    CALIBRATOR_FORMAT.check(meta, meta_file, CheckpointError)
    cls = REGISTRY.get(meta.get("type"))
    if cls is None:
        raise CheckpointError(f"{meta_file} holds an unknown calibrator type "
                              f"{meta.get('type')!r}; known: {sorted(REGISTRY)}.")
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(folder / ARRAYS_FILE))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{folder / ARRAYS_FILE} could not be read ({err}); the "
                              "calibrator is incomplete or corrupt. Fit and save it again.") from None
    missing = set(meta.get("arrays", [])) - set(arrays)
    if missing:
        raise CheckpointError(f"{folder / ARRAYS_FILE} lacks {sorted(missing)}; the calibrator "
                              "is corrupt. Fit and save it again.")
    try:
        cal = cls(**meta.get("settings", {}))
        state = meta["state"]
        cal._restore(arrays)
        cal.n_classes, cal.fit_kind = int(state["n_classes"]), state["fit_kind"]
        cal.fit_info = dict(state.get("fit_info", {}))
    except (TypeError, KeyError, ValueError) as err:
        raise CheckpointError(f"{meta_file} does not describe a valid {cls.__name__} ({err}); "
                              "fit and save it again.") from None
    return cal


def load_from_run(run: Any, name: str) -> Calibrator:
    """The calibrator ``name`` saved into ``run`` with :meth:`Calibrator.save_to_run`."""
    return load(run_path(run, name))


def _like_input(original: Any, probs: np.ndarray) -> Any:
    """``probs`` as a tensor on the original's device when the caller passed a tensor."""
    if type(original).__module__.startswith("torch"):
        import torch

        dtype = original.dtype if original.is_floating_point() else torch.float32
        return torch.from_numpy(np.ascontiguousarray(probs)).to(device=original.device,
                                                                 dtype=dtype)
    return probs
