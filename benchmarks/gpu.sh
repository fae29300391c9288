#!/usr/bin/env bash
# The GPU check of issue 19 in one command, on a machine with one NVIDIA GPU and no network:
#   benchmarks/gpu.sh              # the real run (under 8 minutes on an H100)
#   benchmarks/gpu.sh --dry-run    # every case on the CPU with tiny sizes (what CI runs)
# llmlab comes from this checkout (no install needed: it is put on PYTHONPATH); what the
# machine's Python lacks (polars, on the lent GPU image) comes from wheels in .whl/ if there.
# Prints one JSON line per case on stdout (benchmarks/README.md, "GPU check").
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/llmlab-site .whl/*.whl
  export PYTHONPATH="/tmp/llmlab-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu.py "$@"
