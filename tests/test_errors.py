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
        for value in vars(module).values():
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


# ------------------------------------------------------------------ one saved-format rule
def _formats():
    from llmlab.attention.snapshot import SNAPSHOT_FORMAT
    from llmlab.calibrate.base import CALIBRATOR_FORMAT
    from llmlab.checkpoint import CHECKPOINT_FORMAT
    from llmlab.runs.manifest import MANIFEST_FORMAT
    from llmlab.tokenizers import TOKENIZER_FORMAT

    return [CHECKPOINT_FORMAT, CALIBRATOR_FORMAT, SNAPSHOT_FORMAT, MANIFEST_FORMAT,
            TOKENIZER_FORMAT]


@pytest.mark.parametrize("index", range(5))
def test_every_format_reads_its_versions_and_refuses_newer_and_too_old(index):
    fmt = _formats()[index]
    for version in range(fmt.oldest, fmt.version + 1):
        assert fmt.check({**fmt.header(), fmt.version_key: version}, "f.json") == version
    with pytest.raises(errors.LLMLabError, match=r"newer llmlab.*upgrade llmlab"):
        fmt.check({**fmt.header(), fmt.version_key: fmt.version + 1}, "f.json")
    for bad in ("1", 1.0, True, -1):
        with pytest.raises(errors.LLMLabError, match="whole number"):
            fmt.check({**fmt.header(), fmt.version_key: bad}, "f.json")
    if fmt.oldest > 0:
        with pytest.raises(errors.LLMLabError, match=f"older than this llmlab.*{fmt.redo[:20]}"):
            fmt.check({**fmt.header(), fmt.version_key: fmt.oldest - 1}, "f.json")
    if fmt.name is not None:
        with pytest.raises(errors.LLMLabError, match="is not"):
            fmt.check({"format": "other", fmt.version_key: fmt.version}, "f.json")


def test_a_newer_tokenizer_file_is_refused_with_upgrade(tmp_path):
    tok = llmlab.CharTokenizer.train("abc")
    folder = tok.save(tmp_path)
    path = folder / "tokenizer.json" if folder.is_dir() else folder
    data = __import__("json").loads(path.read_text())
    data["llmlab_tokenizer"] = 99
    path.write_text(__import__("json").dumps(data))
    with pytest.raises(errors.TokenizerError, match="newer llmlab.*upgrade llmlab"):
        llmlab.load_tokenizer(tmp_path)
