"""What the parser sandbox reports about a file: plain data, no parser imported.

The server builds these from the worker's answer (app/media/sandbox.py); the
parsers in the worker build them directly (app/media/report.py).
"""

from __future__ import annotations

from dataclasses import dataclass

COULD_NOT_READ = "This file could not be read; it may be damaged or deliberately malformed."


@dataclass(frozen=True)
class MetadataReport:
    kind: str
    fields: list[tuple[str, str]]
    warnings: list[str]
