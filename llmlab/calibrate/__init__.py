"""Post-hoc calibration: make a model's probabilities mean what they say.

Fit a calibrator on held-out logits (or probabilities), apply it to new ones, and compare the
metric reports; save it with the run that produced the model.

>>> cal = llmlab.calibrate.TemperatureScaling().fit(val_logits, val_labels)   # doctest: +SKIP
>>> after = llmlab.evaluate(cal.transform(test_logits), test_labels)           # doctest: +SKIP
>>> llmlab.calibrate.reliability_diagram([test_logits, cal.transform(test_logits)],
...                                      test_labels, names=["before", "after"])  # doctest: +SKIP
>>> cal.save_to_run(run, "temperature")                                        # doctest: +SKIP

=======================  =========================================  ==========================
calibrator               map                                        keeps accuracy
=======================  =========================================  ==========================
TemperatureScaling       softmax(z / T)                             yes
VectorScaling            softmax(z * w + b)                         no
MatrixScaling            softmax(z @ W.T + b)                       no
PlattScaling             sigmoid(a * log-odds + b), two classes     yes (binary, a > 0)
IsotonicCalibration      monotone step map per class (PAV)          mostly (ties)
HistogramBinning         bin frequency per class                    mostly (ties)
=======================  =========================================  ==========================

For a prompted language model (:class:`llmlab.PromptClassifier`) the calibrators of
:mod:`llmlab.calibrate.prompted` map its label log-probabilities; ``fit`` may take no labels:

========================  ==========================================  =====================
calibrator                fitted on                                   paper
========================  ==========================================  =====================
ContextualCalibration     content-free inputs ("N/A")                 Zhao et al. 2021
DomainContextCalibration  random in-domain word strings               Fei et al. 2023
BatchCalibration          unlabelled test texts                       Zhou et al. 2024
GenerativeCalibration     texts the LM samples itself                 Jiang et al. 2023
PriorAdaptation           unlabelled texts                            Estienne et al. 2023
PrototypicalCalibration   unlabelled texts (Gaussian mixture)         Han et al. 2022
LinearProbeCalibration    a few labelled texts                        Abbas et al. 2024
SupervisedCalibration     labelled texts or the demonstrations        Gundem et al. 2025
HiddenStateCalibration    labelled texts' last hidden states          Cho et al. 2024
========================  ==========================================  =====================

>>> clf.calibrate("prototypical", texts=unlabelled)                            # doctest: +SKIP
>>> llmlab.calibrate.PrototypicalCalibration.load("calibrators/proto")         # doctest: +SKIP

The reliability-diagram functions (matplotlib) are imported on first use.
"""

from __future__ import annotations

from typing import Any

from llmlab.calibrate.base import REGISTRY, Calibrator, load, load_from_run
from llmlab.calibrate.binning import HistogramBinning, IsotonicCalibration, pool_adjacent_violators
from llmlab.calibrate.prompted import (
    BatchCalibration,
    ContextualCalibration,
    DomainContextCalibration,
    GenerativeCalibration,
    HiddenStateCalibration,
    LinearProbeCalibration,
    NoCalibration,
    PriorAdaptation,
    PromptCalibrator,
    PrototypicalCalibration,
    SupervisedCalibration,
)
from llmlab.calibrate.scaling import MatrixScaling, PlattScaling, TemperatureScaling, VectorScaling

__all__ = [
    "REGISTRY",
    "BatchCalibration",
    "Calibrator",
    "ContextualCalibration",
    "DomainContextCalibration",
    "GenerativeCalibration",
    "HiddenStateCalibration",
    "HistogramBinning",
    "IsotonicCalibration",
    "LinearProbeCalibration",
    "MatrixScaling",
    "NoCalibration",
    "PlattScaling",
    "PriorAdaptation",
    "PromptCalibrator",
    "PrototypicalCalibration",
    "SupervisedCalibration",
    "ReliabilityFigure",
    "TemperatureScaling",
    "VectorScaling",
    "figure_png",
    "load",
    "load_from_run",
    "pool_adjacent_violators",
    "reliability_diagram",
    "reliability_png",
]

_PLOTS = {"ReliabilityFigure", "figure_png", "reliability_diagram", "reliability_png"}


def __getattr__(name: str) -> Any:
    if name in _PLOTS:  # matplotlib loads only when a plot is asked for
        from llmlab.calibrate import plots

        value = getattr(plots, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmlab.calibrate' has no attribute {name!r}")
