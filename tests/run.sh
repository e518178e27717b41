#!/usr/bin/env bash
# The whole test suite: formatting, lint, types, import contracts, declared
# dependencies, then pytest (browser tests included, in Debian's chromium with
# JavaScript disabled, and a private Tor network with Debian's tor), on SQLite
# and then on PostgreSQL.
#
#   bash tests/run.sh            the full suite, as CI runs it
#   bash tests/run.sh --fast     the edit-test loop: the same checks, and every
#                                test that needs no chromium, tor or PostgreSQL
#
# Any other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
if [ "${1:-}" = "--fast" ]; then
  fast=1
  shift
fi

if [ "$fast" = 1 ]; then
  source deploy/bootstrap.sh deploy/requirements-test.lock
else
  source deploy/bootstrap.sh deploy/requirements-test.lock chromium tor postgresql
fi

ruff format --check app tests bench
ruff check app tests bench
mypy
# The shape of app/ (ARCHITECTURE.md) and its declared dependencies (pyproject.toml).
lint-imports --no-cache
deptry app

if [ "$fast" = 1 ]; then
  pytest -m "not browser and not tor" "$@"
  exit 0
fi

# The real-Tor tests skip where tor is missing, and the disk-full tests where
# a small tmpfs cannot be mounted (not root); here both must run. The Tor
# tests use their own private network on 127.0.0.1, never the system tor
# service that Debian's package may have started.
export BUZON_REQUIRE_MOUNT=1
BUZON_REQUIRE_TOR=1 pytest "$@"
# Again on PostgreSQL: a throw-away server (tests/support/postgres.py) and a fresh
# database per test, for all but the browser journeys and the Tor network;
# the real-server tests already drive the same routes and queries.
pytest --database=postgresql -m "not browser and not tor" "$@"
