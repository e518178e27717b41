#!/usr/bin/env bash
# The whole test suite: formatting, lint, types, then pytest (browser tests
# included, in Debian's chromium with JavaScript disabled, and a private Tor
# network with Debian's tor).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/bootstrap.sh deploy/requirements-test.lock chromium tor

ruff format --check app tests bench
ruff check app tests bench
mypy
# The real-Tor tests skip where tor is missing; here they must run. They use
# their own private network on 127.0.0.1, never the system tor service that
# Debian's package may have started.
BUZON_REQUIRE_TOR=1 pytest "$@"
