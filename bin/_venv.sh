# Sourced by bin/demo and bin/test: makes .venv and installs the project into it.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
extras=${1:-}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing dependencies${extras:+ (with $extras)}"
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}" 2> >(grep -v "^WARNING: Location" >&2)
  touch "$stamp"
fi
