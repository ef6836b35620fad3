# Sourced by scripts/test and scripts/demo: make .venv and install the package into it.
# PYTHON may name the interpreter (3.11+); EXTRAS the optional extras, e.g. "dev".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
if [[ "${EXTRAS:-}" == *finbert* ]]; then
  # The CPU wheel on this machine's disk, installed first so that nothing pulls a CUDA build.
  .venv/bin/python -m pip install --quiet torch==2.13.0
fi
.venv/bin/python -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}"
