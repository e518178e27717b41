"""File types told from the bytes of a file, never from its name or declared type.

Both come from the sender and prove nothing, so metadata stripping (app/media/strip.py) and the
editors' metadata reports (app/media/report.py) choose their parsers by what is detected here.
"""

from __future__ import annotations

import re
import zipfile
from io import BytesIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# OpenDocument names its type in a first, stored entry called "mimetype".
_ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.graphics": "odg",
}
# Office Open XML has a [Content_Types].xml entry and one main part that names the application.
_OOXML_MAIN_PARTS = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx", "ppt/presentation.xml": "pptx"}
OOXML_KINDS = tuple(_OOXML_MAIN_PARTS.values())
ODF_KINDS = tuple(_ODF_MIMETYPES.values())


def detect(data: bytes, *, media_last: bool = False) -> str:
    """The kind of file ``data`` is, from its signature alone. Never raises, and never parses.

    One of "jpeg", "png", "webp", "heic", "avif", "video" (any other ISO media file: MP4, MOV,
    3GP...), "zip" (any zip archive; ``detect_zip`` tells Office and OpenDocument files apart),
    "pdf", "gif", "tiff" or "unknown".

    A crafted file can start with an ISO media header and still be a zip, PDF or TIFF file to a
    reader of that format. Such a file is "avif" or "video", unless ``media_last`` is set: then it
    is the other format. A HEIC header always wins.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    media = _iso_media_kind(data) if data[4:8] == b"ftyp" else None
    if media is not None and (media == "heic" or not media_last):
        return media
    kind = _other_kind(data)
    return media if media is not None and kind == "unknown" else kind


def detect_zip(data: bytes) -> str:
    """The kind of a zip archive: one of OOXML_KINDS or ODF_KINDS, or "zip" for any other.

    This opens the archive, so check its size first. A broken archive raises what ``zipfile``
    raises for it (``zipfile.BadZipFile`` and the like), which tells it apart from a plain zip.
    """
    with zipfile.ZipFile(BytesIO(data)) as archive:
        infos = archive.infolist()
        if infos and infos[0].filename == "mimetype" and infos[0].file_size <= 100:
            return _ODF_MIMETYPES.get(archive.read(infos[0]).strip(), "zip")
        names = {info.filename for info in infos}
        if "[Content_Types].xml" in names:
            return next((kind for part, kind in _OOXML_MAIN_PARTS.items() if part in names), "zip")
    return "zip"


_EMAIL_HEADERS = (b"received:", b"from:", b"message-id:", b"mime-version:", b"return-path:", b"delivered-to:")
_MARKUP_STARTS = {b"<svg": "svg", b"<!doctype html": "html", b"<html": "html", b"<?xml": "xml"}


def detect_text(data: bytes) -> str:
    """What kind of text file ``data`` is: "rtf", "svg", "html", "xml", "email" or "text".

    Only "text" carries no metadata of its own. The others can (an RTF \\info group, an
    SVG's editor attributes, an e-mail's Received: headers with addresses) and are not
    parsed by any cleaner here, so they must never be called clean.
    """
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"{\\rtf"):
        return "rtf"
    for start, kind in _MARKUP_STARTS.items():
        if head.startswith(start):
            return "svg" if kind == "xml" and b"<svg" in head else kind
    return "email" if _looks_like_email(head) else "text"


_HEADER_LINE = re.compile(rb"[a-z0-9-]{1,76}:")


def _looks_like_email(head: bytes) -> bool:
    """Two or more header lines before the first blank line, one of them a mail header."""
    headers: list[bytes] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t") and headers:
            continue  # a folded header's continuation
        if not _HEADER_LINE.match(line):
            return False
        headers.append(line)
    return len(headers) >= 2 and any(line.startswith(_EMAIL_HEADERS) for line in headers)


def _iso_media_kind(data: bytes) -> str:
    # Major brand, then (after the minor version) the compatible brands.
    end = min(int.from_bytes(data[:4], "big"), len(data), 256)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "avif"
    return "heic" if brands & _HEIF_BRANDS else "video"


def _other_kind(data: bytes) -> str:
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    if b"%PDF-" in data[:1024]:  # readers accept junk before the header, so must we
        return "pdf"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return "unknown"
