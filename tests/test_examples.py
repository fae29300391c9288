"""Every example notebook runs top to bottom without error (offline, data from LLMLAB_DATA_DIR),
and is stored without outputs.

The notebooks use small settings when ``CI`` is set; the ``executed_example`` fixture
(conftest.py) sets it when it is not, so a local run of the suite stays as fast as CI's, and
runs each example once for every test that reads it.
"""

from pathlib import Path

import nbformat
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


def test_there_are_examples():
    assert EXAMPLES
    assert all(p.name[:2].isdigit() and p.name[2] == "_" for p in EXAMPLES), (
        "name examples NN_topic.ipynb, in the order a reader takes them")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (
        f"{path.name}: code cells {dirty} hold outputs or execution counts. Strip them before "
        f"committing: jupyter nbconvert --clear-output --inplace {path.relative_to(path.parents[1])}")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, executed_example):
    nb, _ = executed_example(path.stem)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
