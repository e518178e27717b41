#!/usr/bin/env bash
# The whole test suite: formatting, lint, types, then pytest (browser tests
# included, in Debian's chromium with JavaScript disabled, and a private Tor
# network with Debian's tor), on SQLite and then on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh deploy/requirements-test.lock chromium tor postgresql

ruff format --check app tests bench
ruff check app tests bench
mypy
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
