#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# Idempotent: re-running only reinstalls when setup.cfg changed.
# Usage: scripts/setup-venv.sh [extras]   e.g. scripts/setup-venv.sh test,bench
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
  echo "setup: need Python >= 3.10 as '$PY' (set PYTHON=...)" >&2; exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    # Debian splits venv/ensurepip into a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get update -qq && apt-get install -y -qq "python${ver}-venv" python3-venv >/dev/null || true
      rm -rf .venv; "$PY" -m venv .venv
    else
      echo "setup: '$PY -m venv' failed; install python3-venv" >&2; exit 1
    fi
  fi
fi
stamp=".venv/.pdenet-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip wheel setuptools
  spec="."
  [ -n "$extras" ] && spec=".[${extras}]"
  .venv/bin/python -m pip install -q -e "$spec"
  touch "$stamp"
fi
