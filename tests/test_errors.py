"""Every llmlab error is defined in llmlab/errors.py, subclasses LLMLabError and the built-in
a caller would expect, and is still importable from the modules that raise it."""

import importlib
import pkgutil

import pytest

import llmlab
from llmlab import errors


def all_modules():
    for info in pkgutil.walk_packages(llmlab.__path__, "llmlab."):
        if ".static" in info.name or info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_error_class_lives_in_errors_py():
    found = {}
    for module in all_modules():
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, errors.LLMLabError):
                found[value] = module.__name__
    assert found, "no error classes found"
    strays = sorted(f"{cls.__module__}.{cls.__name__}" for cls in found
                    if cls.__module__ != "llmlab.errors")
    assert strays == []


@pytest.mark.parametrize("name, builtin", [
    ("RunNotFoundError", FileNotFoundError), ("RunStoreError", OSError),
    ("InvalidRunFieldError", ValueError), ("InvalidRunFieldError", TypeError),
    ("TrainingError", RuntimeError), ("UnsafeFileError", OSError),
    ("SnapshotError", ValueError), ("NoModelError", RuntimeError),
])
def test_errors_subclass_the_builtin_a_caller_expects(name, builtin):
    cls = getattr(errors, name)
    assert issubclass(cls, builtin) and issubclass(cls, errors.LLMLabError)


def test_old_import_places_still_work():
    from llmlab.runs import RunNotFoundError, RunStoreError
    from llmlab.train import TrainingError
    from llmlab.widgets.sources import NoModelError

    assert RunStoreError is errors.RunStoreError and RunNotFoundError is errors.RunNotFoundError
    assert TrainingError is errors.TrainingError and NoModelError is errors.NoModelError


def test_a_bad_run_field_is_an_llmlab_error(tmp_path):
    with pytest.raises(errors.InvalidRunFieldError, match="tags must be strings"):
        llmlab.runs.create(store=tmp_path, tags=[3])
