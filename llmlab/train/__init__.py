"""Training on Hugging Face accelerate, recorded in the run store.

>>> import llmlab                                                          # doctest: +SKIP
>>> run = llmlab.Trainer(model, data, max_steps=200).fit()                  # doctest: +SKIP

From a terminal: ``accelerate launch -m llmlab.train spec.json`` (see ``llmlab.train.cli``);
``trainer.to_spec("spec.json")`` and ``trainer.launch_command(num_processes=8)`` take a
notebook's training there (``llmlab.train.launch``). ``sharding="fsdp"`` (or DeepSpeed
ZeRO) shards through accelerate (``llmlab.train.sharding``); every run logs ``tokens_per_s``
and, where the device's peak is known, ``mfu`` (``llmlab.train.throughput``).
"""

from llmlab.train.callbacks import Callback, ProgressBar
from llmlab.train.cli import trainer_from_spec
from llmlab.train.config import TrainConfig, lr_at
from llmlab.train.hardware import suggested_settings
from llmlab.train.launch import SpecFile
from llmlab.train.trainer import Trainer, TrainingError, param_groups

__all__ = ["Callback", "ProgressBar", "SpecFile", "TrainConfig", "Trainer", "TrainingError", "lr_at",
           "param_groups", "suggested_settings", "trainer_from_spec"]
