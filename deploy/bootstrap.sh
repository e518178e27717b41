#!/usr/bin/env bash
# Shared set-up for quickstart.sh and tests/run.sh: Debian packages, a virtual
# environment in .venv, and the pinned dependencies from a lock file.
# Usage: source deploy/bootstrap.sh LOCKFILE [DEBIAN_PACKAGE...]
set -euo pipefail

BUZON_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lockfile="$1"; shift

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$BUZON_ROOT/.venv/bin/python" ]; then
  python3 -m venv "$BUZON_ROOT/.venv"
fi
"$BUZON_ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$BUZON_ROOT/$lockfile"
"$BUZON_ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$BUZON_ROOT"
export PATH="$BUZON_ROOT/.venv/bin:$PATH"
