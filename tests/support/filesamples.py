"""Real files made in memory, shared by the tests of file handling."""

from __future__ import annotations

import io
import zipfile


def make_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``entries``, deflated but for an OpenDocument ``mimetype``, stored as the format requires."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            compression = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=compression)
    return out.getvalue()
