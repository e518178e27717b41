"""Coverage-guided run of the envelope fuzz targets with atheris (libFuzzer).

    PYTHONPATH=/tmp/atheris python -m tests.fuzz.envelopes_atheris --seconds 1800
    PYTHONPATH=/tmp/atheris python -m tests.fuzz.envelopes_atheris /tmp/buzon-fuzz-crashes/crash-…  # replay

atheris is not a project dependency: install it out of the tree first
(``pip install --target /tmp/atheris atheris``). The app's modules are
imported under atheris's instrumentation, so libFuzzer is guided by coverage
of app.crypto, app.services.export and app.ops.offline.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def main() -> None:
    atheris: Any = importlib.import_module("atheris")
    with atheris.instrument_imports(include=["app"]):
        from tests.fuzz import envelopes
    args = envelopes.parse_args(sys.argv[1:])
    envelopes.run_atheris(args.target or list(envelopes.TARGETS), args.seconds, args.runs, args.inputs)


if __name__ == "__main__":
    main()
