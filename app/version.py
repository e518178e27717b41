"""The installed Buzón's version, as its package metadata gives it."""

from __future__ import annotations

import importlib.metadata
from functools import cache


@cache
def buzon_version() -> str:
    try:
        return importlib.metadata.version("buzon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
