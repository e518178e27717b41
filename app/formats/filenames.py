"""Names of files written out of a bundle: safe on Linux, macOS and Windows, and never clashing."""

from __future__ import annotations

import re
import unicodedata

MAX_OUTPUT_NAME_BYTES = 200
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)}


def safe_filename(name: str) -> str:
    """A single path component that is safe to create on Linux, macOS and Windows.

    Separators, NUL, control and format characters go, as do leading dots (no
    hidden files, no ``..``) and trailing dots and spaces; the length is capped.
    """
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if c in '/\\:*?"<>|' else c for c in name if unicodedata.category(c)[0] != "C")
    name = re.sub(r"^[\s.]+|[\s.]+$", "", name)
    if name.split(".", 1)[0].rstrip().upper() in _WINDOWS_RESERVED:
        name = f"_{name}"
    stem, ext = _split_extension(name)
    room = MAX_OUTPUT_NAME_BYTES - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore").rstrip(". ")
    return f"{stem}{ext}" if stem else f"unnamed{ext}"


def _split_extension(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16 or not ext.isalnum():
        return name, ""
    return stem, f".{ext}"


def unused_name(name: str, taken: set[str]) -> str:
    stem, ext = _split_extension(name)
    candidate, counter = name, 1
    # Case-folded, for file systems that ignore case (macOS, Windows).
    while candidate.casefold() in taken:
        counter += 1
        candidate = f"{stem} ({counter}){ext}"
    return candidate
