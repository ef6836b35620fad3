# Sourced by scripts/test and scripts/demo: make .venv and install the package into it.
# PYTHON may name the interpreter (3.11+); EXTRAS the optional extras, e.g. "dev".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet -e ".${EXTRAS:+[$EXTRAS]}"
