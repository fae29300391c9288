"""The README's Python snippets run as written: every ```python block, in order, in one
namespace (later blocks use what earlier ones built), in a fresh folder, with no network."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

# Runs the blocks given as (line, source) pairs; connecting anywhere but this machine fails.
RUNNER = '''
import socket, sys

_connect = socket.socket.connect
def _local_only(self, address):
    if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"README snippets must run offline; one connected to {address}")
    return _connect(self, address)
socket.socket.connect = _local_only

namespace = {"__name__": "__main__"}
for line, source in BLOCKS:
    exec(compile(source, f"README.md:{line}", "exec"), namespace)
print("ran", len(BLOCKS), "blocks")
'''


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, source) of each ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_readme_has_python_snippets():
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    assert all(source.strip() for _, source in blocks)


def test_readme_snippets_run_offline(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    script = tmp_path / "readme_snippets.py"
    script.write_text(f"BLOCKS = {blocks!r}\n{RUNNER}", encoding="utf-8")
    env = {**os.environ, "LLMLAB_DATA_DIR": str(SHARED_DATA), "MPLBACKEND": "Agg",
           "LLMLAB_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("LLMLAB_RUNS_DIR", None)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"ran {len(blocks)} blocks" in done.stdout
    assert (tmp_path / "llmlab-runs").is_dir() and (tmp_path / "gpt2-export" / "config.json").is_file()
