"""Training on Hugging Face accelerate, recorded in the run store.

>>> import llmlab                                                          # doctest: +SKIP
>>> run = llmlab.Trainer(model, data, max_steps=200).fit()                  # doctest: +SKIP

From a terminal: ``accelerate launch -m llmlab.train spec.json`` (see ``llmlab.train.cli``).
"""

from llmlab.train.callbacks import Callback, ProgressBar
from llmlab.train.cli import trainer_from_spec
from llmlab.train.config import TrainConfig, lr_at
from llmlab.train.hardware import suggested_settings
from llmlab.train.trainer import Trainer, TrainingError, param_groups

__all__ = ["Callback", "ProgressBar", "TrainConfig", "Trainer", "TrainingError", "lr_at",
           "param_groups", "suggested_settings", "trainer_from_spec"]
