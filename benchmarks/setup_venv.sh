#!/usr/bin/env bash
# Create the benchmark virtual environment, apart from the test one: torch 2.13.0 (CPU build),
# tracetorch (editable) and the peers from the `bench` extra.
# Usage: benchmarks/setup_venv.sh [VENV]   (default: ../benchvenv next to the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-${BENCH_VENV:-../benchvenv}}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# torch is named on both lines: Norse needs torchvision, and pip would otherwise pick the newest
# torchvision and replace torch with the matching (multi-GB CUDA) build.
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q -e ".[bench]" torch==2.13.0
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "tracetorch", "snntorch", "norse", "spikingjelly"):
    print(f"{name:14s}", md.version(name))
PY
