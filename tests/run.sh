#!/usr/bin/env bash
# The whole test suite: formatting, lint, types, then pytest (browser tests
# included, in Debian's chromium with JavaScript disabled).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh deploy/requirements-test.lock chromium

ruff format --check app tests bench
ruff check app tests bench
mypy
pytest "$@"
