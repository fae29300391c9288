"""binder/ installs a working llmlab the way repo2docker does.

repo2docker (Docker) cannot run here, so this test does its Python steps by hand in a fresh
virtual environment: ``pip install -r binder/requirements.txt``, then ``binder/postBuild`` run
from the repository root, then the checks a user would make: ``jupyter labextension list`` and
``jupyter server extension list`` show llmlab enabled and OK.

Two differences from Binder, both forced by this machine: the PyTorch CPU index named in the
requirements is unreachable, so those index lines are dropped and ``torch==2.13.0`` comes from
the machine's local CPU wheel (what that index serves); and the repository is copied with its
already built front end (``llmlab/labextension``, ``llmlab/attention/static``), so the install
skips the npm build that ``pip install .`` in CI has already exercised. It takes a few minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
BUILT = ("llmlab/labextension", "llmlab/attention/static")  # gitignored build outputs
ANSI = re.compile(r"\x1b\[[0-9;]*m")
INDEX_OPTION = re.compile(r"^\s*--(extra-)?index-url\b")


def run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = ANSI.sub("", done.stdout + done.stderr)
    assert done.returncode == 0, f"`{' '.join(command)}` failed:\n{output[-4000:]}"
    return output


def copy_repository(target: Path) -> None:
    """The files a clone has (tracked and not ignored), plus the built front end."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for name in BUILT:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, dirs_exist_ok=True)


def requirements_without_index(target: Path) -> Path:
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not INDEX_OPTION.match(line)]
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return target


def test_binder_environment_installs_llmlab_with_both_extensions(tmp_path):
    assert (BINDER / "requirements.txt").is_file() and os.access(BINDER / "postBuild", os.X_OK)
    assert re.search(r"^torch==\S+", (BINDER / "requirements.txt").read_text(), re.MULTILINE)
    repo, home, venv = tmp_path / "repo", tmp_path / "home", tmp_path / "venv"
    copy_repository(repo)
    home.mkdir()
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=dict(os.environ))
    bin_dir = venv / "bin"
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(venv), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PIP_COMPILE": "0"}  # no bytecode compiling: halves the install time
    env.pop("PYTHONPATH", None)
    python = str(bin_dir / "python")

    run([python, "-m", "pip", "install", "torch==2.13.0"], cwd=repo, env=env)
    run([python, "-m", "pip", "install", "-r",
         str(requirements_without_index(tmp_path / "requirements.txt"))], cwd=repo, env=env)
    run(["bash", str(repo / "binder" / "postBuild")], cwd=repo, env=env)

    labextensions = run([python, "-m", "jupyter", "labextension", "list"], cwd=home, env=env)
    assert re.search(r"^\s*llmlab v\S+\s+enabled\s+OK\b", labextensions, re.MULTILINE), labextensions
    servers = run([python, "-m", "jupyter", "server", "extension", "list"], cwd=home, env=env)
    assert re.search(r"^\s*llmlab\s+enabled\s*$", servers, re.MULTILINE), servers
    assert re.search(r"^\s*llmlab\s+\S*\s*OK\s*$", servers, re.MULTILINE), servers
    # the installed package is the copy's, not this checkout's editable install
    where = run([python, "-c", "import llmlab, torch; print(llmlab.__file__, torch.__version__)"],
                cwd=home, env=env)
    assert str(venv) in where and "+cpu" in where, where
    settings = home / ".jupyter" / "jupyter_server_config.d" / "llmlab-binder.json"
    assert json.loads(settings.read_text())["ServerApp"]["default_url"] == "/lab/tree/examples"
