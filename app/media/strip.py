"""Metadata stripping for uploaded files, entirely in memory.

A GPS tag, a camera serial number or an author name inside a file can identify
a source, so every uploaded file is cleaned before it is encrypted. Parsers are
chosen by magic bytes only (app/media/filetypes.py): the file name and declared type
come from the sender and prove nothing.

Images are cleaned without re-encoding: the container is walked and only
segments or chunks on an allow-list are kept, so the compressed image data is
copied bit for bit. An EXIF orientation tag survives as a one-entry EXIF block,
so photos still display upright. HEIC metadata items are overwritten in place
with empty ones of the same size, which keeps every offset in the file valid.
Office and OpenDocument files are rewritten zip entry by zip entry, PDFs are
rewritten by qpdf. Nothing here touches the disk.
"""

from __future__ import annotations

import importlib.util
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO

import pikepdf
from pikepdf import Name
from PIL import Image

from app.crypto import Sanitised
from app.media import filetypes
from app.media.pdfobjects import every_dictionary

MAX_STRIP_BYTES = 64 * 1024 * 1024
# Office and OpenDocument files are zips: never inflate more than this while rewriting one.
MAX_UNZIPPED_BYTES = 4 * MAX_STRIP_BYTES
MAX_ZIP_ENTRIES = 10_000
# Pixels are never decoded here (Pillow only parses the headers of our output), so this cap only
# bounds what a decode elsewhere in the process could allocate. It lies above the largest phone
# cameras (200 MP), so Pillow neither warns about nor refuses a real photo.
MAX_IMAGE_PIXELS = 256 * 1024 * 1024
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

_HAVE_HEIF = importlib.util.find_spec("pillow_heif") is not None


@dataclass(frozen=True)
class StripResult:
    data: bytes
    status: Sanitised
    kind: str


class _Malformed(ValueError):
    pass


# What a damaged or hostile file can make the parsers raise. Anything else is a bug and propagates.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    struct.error,
    OSError,
    EOFError,
    SyntaxError,
    RuntimeError,
    NotImplementedError,
    MemoryError,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    Image.DecompressionBombError,
    pikepdf.PdfError,
)


def strip_metadata(data: bytes) -> StripResult:
    """Return ``data`` without identifying metadata, and what was done to it.

    Never raises for bad input: a file that cannot be cleaned comes back unchanged, with
    status UNSUPPORTED (format unknown to this module), FAILED (format known, file broken)
    or TOO_LARGE. Only the bytes choose the parser: a name or declared type comes from
    the sender and proves nothing.
    """
    kind = filetypes.detect(data)
    if len(data) > MAX_STRIP_BYTES:
        return StripResult(data, Sanitised.TOO_LARGE, kind)
    if kind == "unknown":
        # RTF, SVG, HTML, XML and e-mail can carry authors, paths and addresses that no cleaner
        # here parses: they are kept as sent and the source is told, never called clean.
        text_kind = filetypes.detect_text(data)
        if text_kind != "text":
            return StripResult(data, Sanitised.UNSUPPORTED, text_kind)
        if _is_text(data):
            return StripResult(data, Sanitised.NONE_FOUND, "text")
    try:
        if kind == "zip":
            kind = filetypes.detect_zip(data)
        cleaner = _CLEANERS.get(kind)
        if cleaner is None or (kind == "heic" and not _HAVE_HEIF):
            return StripResult(data, Sanitised.UNSUPPORTED, kind)
        cleaned = cleaner(data)
    except _PARSE_ERRORS:
        return StripResult(data, Sanitised.FAILED, kind)
    status = Sanitised.STRIPPED if cleaned != data else Sanitised.NONE_FOUND
    return StripResult(cleaned, status, kind)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- EXIF orientation ---------------------------------------------------------------------------

_ORIENTATION_TAG = 0x0112


def _read_orientation(tiff: bytes) -> int:
    """The orientation in an EXIF (TIFF) block, or 1 (upright) if there is none or it is odd."""
    tiff = tiff.removeprefix(b"Exif\x00\x00")
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack_from(order + "H", tiff, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        tag, field_type, values = struct.unpack_from(order + "HHI", tiff, entry)
        if tag == _ORIENTATION_TAG and field_type == 3 and values == 1:
            (value,) = struct.unpack_from(order + "H", tiff, entry + 8)
            return value if 1 <= value <= 8 else 1
    return 1


def _orientation_tiff(orientation: int) -> bytes:
    # Big-endian TIFF header, then one IFD holding a single SHORT entry and no next IFD.
    return b"MM\x00\x2a" + struct.pack(">IHHHIHHI", 8, 1, _ORIENTATION_TAG, 3, 1, orientation, 0, 0)


# -- JPEG ------------------------------------------------------------------------------------------

# After SOS, entropy-coded data runs to the next marker: 0xFF not followed by a stuffed 0x00,
# a restart marker or a fill byte.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS, _EOI, _APP0, _APP1, _APP14, _COM = 0xDA, 0xD9, 0xE0, 0xE1, 0xEE, 0xFE


def _strip_jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise _Malformed("not a JPEG")
    # The image data is kept as views into ``data``: the result is then the only copy made.
    kept: list[bytes | memoryview] = []
    orientation = 1
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            raise _Malformed("expected a marker")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            raise _Malformed("truncated marker")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            break  # anything after EOI (MPF secondary images, vendor trailers) is dropped
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            kept.append(bytes((0xFF, marker)))
            continue
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > end:
            raise _Malformed("truncated segment")
        if marker == _SOS:
            # A file cut short inside its image data keeps what it has: every segment seen so far
            # has been cleaned, and the EOI appended below closes it.
            match = _SCAN_END.search(data, pos + length)
            scan_end = match.start() if match else end
            kept += [b"\xff\xda", memoryview(data)[pos:scan_end]]
            pos = scan_end
            continue
        payload = data[pos + 2 : pos + length]
        pos += length
        if marker == _APP1 and payload.startswith(b"Exif\x00\x00"):
            orientation = _read_orientation(payload)
        segment = _kept_jpeg_segment(marker, payload)
        if segment is not None:
            kept.append(segment)
    if orientation != 1:
        at = 1 if kept and kept[0][:2] == b"\xff\xe0" else 0
        kept.insert(at, _jpeg_segment(_APP1, b"Exif\x00\x00" + _orientation_tiff(orientation)))
    return b"".join([b"\xff\xd8", *kept, b"\xff\xd9"])


def _kept_jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    if marker == _APP0:
        # JFIF carries only pixel density. Its optional thumbnail could show an uncropped original.
        if payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            return _jpeg_segment(marker, payload[:12] + b"\x00\x00")
        return None
    if marker == _APP14:
        # Adobe's segment says how to convert colours (YCCK/CMYK); without it colours come out wrong.
        return _jpeg_segment(marker, payload) if payload.startswith(b"Adobe") else None
    if _APP1 <= marker <= 0xEF or marker == _COM:
        return None  # EXIF, XMP, ICC, MPF, IPTC, C2PA, maker data and comments
    return _jpeg_segment(marker, payload)


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


# -- PNG -------------------------------------------------------------------------------------------

# Ancillary chunks that only say how to render the pixels (and APNG frames). Every other ancillary
# chunk is dropped: text, eXIf, tIME, iCCP and private ones such as C2PA's caBX.
_PNG_KEEP = frozenset(
    {b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs", b"hIST", b"cICP", b"mDCV", b"cLLI"}
    | {b"acTL", b"fcTL", b"fdAT"}
)


def _strip_png(data: bytes) -> bytes:
    # Chunks are kept as views into ``data``, as in _strip_jpeg.
    kept: list[bytes | memoryview] = []
    orientation = 1
    pos = len(filetypes.PNG_SIGNATURE)
    chunk_type = b""
    while chunk_type != b"IEND":
        if pos + 12 > len(data):
            raise _Malformed("truncated PNG")
        length, chunk_type = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise _Malformed("truncated chunk")
        if chunk_type == b"eXIf":
            orientation = _read_orientation(data[pos + 8 : end - 4])
        # Critical chunks (upper-case first letter) are kept even if unknown: dropping one breaks the image.
        if not chunk_type[0] & 0x20 or chunk_type in _PNG_KEEP:
            kept.append(memoryview(data)[pos:end])
        pos = end
    if orientation != 1:
        payload = b"eXIf" + _orientation_tiff(orientation)
        chunk = struct.pack(">I", len(payload) - 4) + payload + struct.pack(">I", zlib.crc32(payload))
        kept.insert(1, chunk)  # right after IHDR: eXIf must come before the image data
    return b"".join([filetypes.PNG_SIGNATURE, *kept])


# -- WebP ------------------------------------------------------------------------------------------

_WEBP_KEEP = frozenset({b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF"})
_VP8X_ICC, _VP8X_EXIF, _VP8X_XMP = 0x20, 0x08, 0x04


def _strip_webp(data: bytes) -> bytes:
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data) or end < 12:
        raise _Malformed("truncated RIFF")
    kept: list[bytes] = []
    orientation = 1
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise _Malformed("truncated chunk header")
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body_end = pos + 8 + size
        if body_end > end:
            raise _Malformed("truncated chunk")
        if fourcc == b"EXIF":
            orientation = _read_orientation(data[pos + 8 : body_end])
        if fourcc in _WEBP_KEEP:
            kept.append(data[pos:body_end] + b"\x00" * (size & 1))
        pos = body_end + (size & 1)
    if kept and kept[0].startswith(b"VP8X"):
        if len(kept[0]) < 18:
            raise _Malformed("short VP8X")
        flags = kept[0][8] & ~(_VP8X_ICC | _VP8X_EXIF | _VP8X_XMP)
        if orientation != 1:
            flags |= _VP8X_EXIF
            tiff = _orientation_tiff(orientation)  # an even length: no padding byte
            kept.append(b"EXIF" + struct.pack("<I", len(tiff)) + tiff)
        kept[0] = kept[0][:8] + bytes((flags,)) + kept[0][9:]
    body = b"WEBP" + b"".join(kept)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# -- verification with Pillow -----------------------------------------------------------------------

# Keys Pillow fills from metadata it found; none may survive (an orientation-only "exif" may).
_PILLOW_METADATA_KEYS = frozenset({"comment", "icc_profile", "xmp", "XML:com.adobe.xmp", "photoshop", "mp"})


def _verified(data: bytes, pillow_format: str) -> bytes:
    """``data`` if Pillow still reads it as an image and finds no metadata in it."""
    with Image.open(BytesIO(data), formats=[pillow_format]) as image:
        exif_tags = _exif_tags(image)
        if exif_tags - {_ORIENTATION_TAG} or _PILLOW_METADATA_KEYS & image.info.keys():
            raise _Malformed("metadata survived")
    return data


def _exif_tags(image: Image.Image) -> set[int]:
    if image.format != "PNG":
        return set(image.getexif())
    # PNG's getexif() decodes every pixel to look for an eXIf chunk after the
    # image data: a 0.7 MB file can decode to 1 GB. _strip_png keeps no eXIf
    # but its own, right after IHDR, which Pillow reads with the header.
    exif = Image.Exif()
    if "exif" in image.info:
        exif.load(image.info["exif"])
    return set(exif)


def _clean_jpeg(data: bytes) -> bytes:
    return _verified(_strip_jpeg(data), "JPEG")


def _clean_png(data: bytes) -> bytes:
    return _verified(_strip_png(data), "PNG")


def _clean_webp(data: bytes) -> bytes:
    return _verified(_strip_webp(data), "WEBP")


# -- HEIC ------------------------------------------------------------------------------------------


class _Reader:
    """Big-endian unsigned fields from ``data[pos:end]``, bounds-checked."""

    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def uint(self, size: int) -> int:
        if not 0 <= size <= 8 or self.pos + size > self.end:
            raise _Malformed("bad field")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each ISO-BMFF box in ``data[start:end]``."""
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise _Malformed("truncated box")
        size, box_type = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = _Reader(data, pos + 8, end).uint(8), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _Malformed("bad box size")
        yield box_type, pos + header, pos + size
        pos += size


_EMPTY_EXIF_ITEM = b"\x00\x00\x00\x00" + b"MM\x00\x2a" + struct.pack(">IHI", 8, 0, 0)
_EMPTY_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'


def _empty_exif_item(length: int) -> bytes:
    # An EXIF item is a 4-byte offset, then TIFF; an empty TIFF keeps strict readers happy.
    return _EMPTY_EXIF_ITEM.ljust(length, b"\x00") if length >= len(_EMPTY_EXIF_ITEM) else bytes(length)


def _empty_xmp_item(length: int) -> bytes:
    return _EMPTY_XMP.ljust(length, b" ") if length >= len(_EMPTY_XMP) else b" " * length


def _clean_heic(data: bytes) -> bytes:
    meta = next(((start, end) for kind, start, end in _boxes(data, 0, len(data)) if kind == b"meta"), None)
    if meta is None:
        raise _Malformed("no meta box")
    children = {kind: (start, end) for kind, start, end in _boxes(data, meta[0] + 4, meta[1])}
    if b"iinf" not in children or b"iloc" not in children:
        raise _Malformed("no item tables")
    blankers = _heif_metadata_items(data, *children[b"iinf"])
    idat = children.get(b"idat")
    cleaned = bytearray(data)
    for item_id, method, extents in _heif_locations(data, *children[b"iloc"]):
        blank = blankers.get(item_id)
        if blank is None:
            continue
        if method not in (0, 1) or (method == 1 and idat is None):
            raise _Malformed("unsupported item construction")
        origin = idat[0] if method == 1 and idat is not None else 0
        spans = [(origin + offset, length) for offset, length in extents]
        if any(length == 0 or offset + length > len(data) for offset, length in spans):
            raise _Malformed("item outside the file")
        filler = blank(sum(length for _, length in spans))
        done = 0
        for offset, length in spans:
            cleaned[offset : offset + length] = filler[done : done + length]
            done += length
    return _verified_heic(bytes(cleaned))


def _heif_metadata_items(data: bytes, start: int, end: int) -> dict[int, Callable[[int], bytes]]:
    """Item id → how to blank it, for every EXIF and MIME (XMP and the like) item."""
    items: dict[int, Callable[[int], bytes]] = {}
    header = _Reader(data, start, end)
    version = header.uint(1)
    header.uint(3)
    header.uint(2 if version == 0 else 4)
    for kind, box_start, box_end in _boxes(data, header.pos, end):
        entry = _Reader(data, box_start, box_end)
        if kind != b"infe" or (entry_version := entry.uint(1)) < 2:
            continue  # infe versions 0 and 1 carry no item type
        entry.uint(3)
        item_id = entry.uint(2 if entry_version == 2 else 4)
        entry.uint(2)  # protection index
        item_type = data[entry.pos : entry.pos + 4]
        if item_type == b"Exif":
            items[item_id] = _empty_exif_item
        elif item_type == b"mime":
            fields = data[entry.pos + 4 : box_end].split(b"\x00")
            is_xmp = len(fields) > 1 and fields[1] == b"application/rdf+xml"
            items[item_id] = _empty_xmp_item if is_xmp else bytes
    return items


def _heif_locations(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    """(item id, construction method, [(offset, length), ...]) from an iloc box."""
    r = _Reader(data, start, end)
    version = r.uint(1)
    r.uint(3)
    if version > 2:
        raise _Malformed("unknown iloc version")
    sizes = r.uint(1)
    offset_size, length_size = sizes >> 4, sizes & 15
    sizes = r.uint(1)
    base_size, index_size = sizes >> 4, (sizes & 15 if version in (1, 2) else 0)
    id_size = 2 if version < 2 else 4
    for _ in range(r.uint(id_size)):
        item_id = r.uint(id_size)
        method = r.uint(2) & 15 if version in (1, 2) else 0
        r.uint(2)  # data reference index
        base = r.uint(base_size)
        extents = []
        for _ in range(r.uint(2)):
            r.uint(index_size)
            offset = r.uint(offset_size)
            extents.append((base + offset, r.uint(length_size)))
        yield item_id, method, extents


def _verified_heic(data: bytes) -> bytes:
    import pillow_heif  # optional: without it HEIC is UNSUPPORTED before we get here

    for image in pillow_heif.open_heif(BytesIO(data)):
        exif = image.info.get("exif")
        xmp = image.info.get("xmp")
        if exif is not None and (not isinstance(exif, bytes) or _exif_has_tags(exif)):
            raise _Malformed("EXIF survived")
        if xmp is not None and (not isinstance(xmp, bytes) or xmp.strip(b" \x00") not in (b"", _EMPTY_XMP)):
            raise _Malformed("XMP survived")
    return data


def _exif_has_tags(exif: bytes) -> bool:
    parsed = Image.Exif()
    parsed.load(exif)
    return len(parsed) > 0


# -- PDF -------------------------------------------------------------------------------------------

# Per-object entries that describe the document's history rather than its content.
_PDF_OBJECT_KEYS = (Name.Metadata, Name.PieceInfo, Name.LastModified)
# On markup annotations (comments), /T is the author's name.
_PDF_ANNOTATION_KEYS = (Name.T, Name.M, Name.CreationDate)


def _clean_pdf(data: bytes) -> bytes:
    # pikepdf reads and writes these streams through Python: qpdf spools nothing to disk.
    with pikepdf.open(BytesIO(data), conversion_mode="explicit") as pdf:
        for key in (Name.Info, Name.ID):
            if key in pdf.trailer:
                del pdf.trailer[key]
        for found in every_dictionary(pdf):
            _scrub_pdf_object(found)
        for page in pdf.pages:
            _scrub_pdf_page(page.obj)
        out = BytesIO()
        # Rewriting drops earlier revisions (incremental updates can hold old text and old
        # metadata). qpdf would carry over the first half of /ID, which is set when a document is
        # created and could match the author's own copy, so it is derived from the content instead.
        pdf.save(out, deterministic_id=True)
    return out.getvalue()


def _scrub_pdf_object(obj: pikepdf.Dictionary | pikepdf.Stream) -> None:
    for key in _PDF_OBJECT_KEYS:
        if key in obj:
            del obj[key]
    # pdfTeX copies an included PDF's file name, page number and whole /Info into /PTEX.* keys.
    for ptex in [str(name) for name in obj if str(name).startswith("/PTEX.")]:
        del obj[ptex]
    if obj.get(Name.Type) == Name.Filespec:
        _scrub_filespec(obj)
    if isinstance(obj, pikepdf.Stream) and obj.get(Name.Type) == Name.EmbeddedFile and Name.Params in obj:
        # Creation and modification dates (with the author's time zone) and Mac file info.
        del obj[Name.Params]
    if isinstance(obj, pikepdf.Stream) and obj.get(Name.Subtype) == Name.Image and _is_filter(obj, Name.JPXDecode):
        raw = obj.read_raw_bytes()
        cleaned = _strip_jpx(raw)
        if cleaned != raw:
            obj.write(cleaned, filter=Name.JPXDecode)
    # A photo pasted into a PDF is usually the camera's JPEG, EXIF and GPS included.
    if isinstance(obj, pikepdf.Stream) and obj.get(Name.Subtype) == Name.Image and _is_filter(obj, Name.DCTDecode):
        raw = obj.read_raw_bytes()
        cleaned = _strip_jpeg(raw)
        if cleaned != raw:
            parms = obj.get(Name.DecodeParms)
            keep = parms if isinstance(parms, pikepdf.Dictionary | pikepdf.Array) else None
            obj.write(cleaned, filter=Name.DCTDecode, decode_parms=keep)


def _is_filter(stream: pikepdf.Stream, name: Name) -> bool:
    filters = stream.get(Name.Filter)
    if isinstance(filters, pikepdf.Array) and len(filters) == 1:
        filters = filters[0]
    return isinstance(filters, Name) and filters == name


def _scrub_filespec(spec: pikepdf.Dictionary | pikepdf.Stream) -> None:
    """An attachment keeps its file name, not the folder it was attached from."""
    for key in (Name.F, Name.UF, Name.DOS, Name.Mac, Name.Unix):
        value = spec.get(key)
        if isinstance(value, pikepdf.String):
            spec[key] = pikepdf.String(re.split(r"[\\/:]", str(value))[-1])


# JPEG 2000 (JP2) boxes that hold pictures and how to show them; XML, UUID and IPR boxes
# (XMP, GeoJP2 coordinates, camera data) go.
_JPX_KEEP = frozenset({b"jP  ", b"ftyp", b"rreq", b"jp2h", b"jpch", b"jplh", b"jp2c", b"res ", b"colr"})


def _strip_jpx(data: bytes) -> bytes:
    if not data.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return data  # a bare codestream has no boxes to drop
    kept, pos = bytearray(), 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise _Malformed("truncated box")
        size, box_type = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = _Reader(data, pos + 8, len(data)).uint(8)
        elif size == 0:
            size = len(data) - pos
        if size < 8 or pos + size > len(data):
            raise _Malformed("bad box size")
        if box_type in _JPX_KEEP:
            kept += data[pos : pos + size]
        pos += size
    return bytes(kept)


def _scrub_pdf_page(page: pikepdf.Dictionary) -> None:
    # A stale thumbnail can show the page before it was edited or redacted.
    if Name.Thumb in page:
        del page[Name.Thumb]
    annotations = page.get(Name.Annots)
    if not isinstance(annotations, pikepdf.Array):
        return
    for annotation in annotations:
        # A form field's /T is its name, which the form needs; only comments lose it.
        if isinstance(annotation, pikepdf.Dictionary) and annotation.get(Name.Subtype) != Name.Widget:
            for key in _PDF_ANNOTATION_KEYS:
                if key in annotation:
                    del annotation[key]


# -- Office Open XML and OpenDocument -------------------------------------------------------------

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Empty but valid property parts. They are replaced rather than deleted because the package's
# relationships and content types still name them, and Office calls a missing part corruption.
_OOXML_EMPTY_PARTS = {
    "docProps/core.xml": _XML_DECLARATION
    + b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
    b' xmlns:dcmitype="http://purl.org/dc/dcmitype/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>',
    "docProps/app.xml": _XML_DECLARATION
    + b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"'
    b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"/>',
    "docProps/custom.xml": _XML_DECLARATION
    + b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
    b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"/>',
}
_ODF_VERSION = re.compile(rb'office:version="([0-9.]{1,8})"')
_IMAGE_STRIPPERS: dict[str, Callable[[bytes], bytes]] = {"jpeg": _strip_jpeg, "png": _strip_png, "webp": _strip_webp}


def _clean_ooxml(data: bytes) -> bytes:
    return _rewrite_zip(data, _clean_ooxml_part)


def _clean_odf(data: bytes) -> bytes:
    return _rewrite_zip(data, _clean_odf_part)


# Parts that exist only to say who worked on a file, on which machine: emptied, not deleted,
# because relationships and content types still name them.
_OOXML_EMPTIED = (
    (re.compile(r"(word|xl|ppt)/people\.xml"), _XML_DECLARATION + b"<people/>"),
    (re.compile(r"xl/persons/person\d*\.xml"), _XML_DECLARATION + b"<personList/>"),
    (re.compile(r"customXml/item\d+\.xml"), _XML_DECLARATION + b"<empty/>"),
    (re.compile(r"(word|xl|ppt)/printerSettings/[^/]+\.bin"), b""),
)
# Attributes, in any namespace, that name or date a person's edit. Editing-session ids are
# optional and go; names and dates are often required (w:author on a tracked change, dt on a
# slide comment), so names are emptied and dates set to one fixed instant.
_PREFIX = rb"(?:[A-Za-z_][\w.-]*:)?"
_VALUE = rb"""(?:"[^"]*"|'[^']*')"""
_RSID_ATTRIBUTES = re.compile(rb"\s" + _PREFIX + rb"rsid\w*\s*=\s*" + _VALUE)
_PERSON_ATTRIBUTES = re.compile(rb"(\s" + _PREFIX + rb"(?:author|initials|userId|providerId)\s*=\s*)" + _VALUE)
_DATE_ATTRIBUTES = re.compile(rb"(\s" + _PREFIX + rb"(?:date|dateUtc|dT|dt)\s*=\s*)" + _VALUE)
_NEUTRAL_DATE = b"1970-01-01T00:00:00Z"
# Slide comment authors are named by a name attribute, in parts of their own.
_AUTHOR_PARTS = re.compile(r"ppt/(?:commentAuthors|authors)\.xml")
_NAME_ATTRIBUTES = re.compile(rb"(\s" + _PREFIX + rb"name\s*=\s*)" + _VALUE)
# Word's list of editing-session ids in settings.xml, and Excel's record of where the workbook was saved.
_RSID_LIST = re.compile(rb"<(" + _PREFIX + rb")rsids\b.*?</\1rsids>", re.DOTALL)
_ABSOLUTE_PATH = re.compile(rb"""(<(?:[A-Za-z_][\w.-]*:)?absPath\b[^>]*?\surl\s*=\s*)(?:"[^"]*"|'[^']*')""")
# Comment authors in SpreadsheetML: <authors><author>Name</author></authors>.
_AUTHOR_ELEMENT = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?author>)[^<]*(</)")
# A relationship to a local file (an attached template, a linked workbook) names the author's disk.
_LOCAL_TARGET = re.compile(
    rb"""(\sTarget\s*=\s*)(?:"(?:file:|[A-Za-z]:[\\/]|\\\\)[^"]*"|'(?:file:|[A-Za-z]:[\\/]|\\\\)[^']*')""",
    re.IGNORECASE,
)


def _clean_ooxml_part(name: str, content: bytes) -> bytes:
    emptied = _OOXML_EMPTY_PARTS.get(name)
    if emptied is not None:
        return emptied
    for pattern, replacement in _OOXML_EMPTIED:
        if pattern.fullmatch(name):
            return replacement
    if name.endswith(".rels"):
        return _LOCAL_TARGET.sub(rb'\1""', content)
    if _AUTHOR_PARTS.fullmatch(name):
        content = _NAME_ATTRIBUTES.sub(rb'\1""', content)
    if name.endswith(".xml"):
        return _scrub_ooxml_xml(content)
    return _strip_embedded(content)


def _scrub_ooxml_xml(content: bytes) -> bytes:
    content = _RSID_LIST.sub(b"", content)
    content = _RSID_ATTRIBUTES.sub(b"", content)
    content = _PERSON_ATTRIBUTES.sub(rb'\1""', content)
    content = _DATE_ATTRIBUTES.sub(rb'\1"' + _NEUTRAL_DATE + b'"', content)
    content = _ABSOLUTE_PATH.sub(rb'\1""', content)
    return _AUTHOR_ELEMENT.sub(rb"\1\2", content)


# OpenDocument records who made each tracked change and annotation, and when, as Dublin Core
# elements; settings.xml names the printer. Dates keep a fixed value: change-info requires one.
_ODF_PERSON = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?(?:creator|creator-initials)>)[^<]*(</)")
_ODF_DATE = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?date>)[^<]*(</)")
_ODF_DATE_STRING = re.compile(rb"(<(?:[A-Za-z_][\w.-]*:)?date-string>)[^<]*(</)")
_ODF_PRINTER = re.compile(
    rb"""(<(?:[A-Za-z_][\w.-]*:)?config-item\b[^>]*?name\s*=\s*["']Printer(?:Name|Setup)["'][^>]*>)[^<]*(</)"""
)
_ODF_NEUTRAL_DATE = b"1970-01-01T00:00:00"


def _scrub_odf_xml(content: bytes) -> bytes:
    content = _ODF_PERSON.sub(rb"\1\2", content)
    content = _ODF_DATE.sub(rb"\g<1>" + _ODF_NEUTRAL_DATE + rb"\2", content)
    content = _ODF_DATE_STRING.sub(rb"\1\2", content)
    return _ODF_PRINTER.sub(rb"\1\2", content)


def _clean_odf_part(name: str, content: bytes) -> bytes:
    if name != "meta.xml":
        return _scrub_odf_xml(content) if name.endswith(".xml") else _strip_embedded(content)
    match = _ODF_VERSION.search(content)
    version = match.group(1) if match else b"1.2"
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta'
        b' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" office:version="'
        + version
        + b'"><office:meta/></office:document-meta>'
    )


def _strip_embedded(content: bytes) -> bytes:
    # Word and LibreOffice keep a pasted photo's original bytes, EXIF and GPS included.
    stripper = _IMAGE_STRIPPERS.get(filetypes.detect(content))
    return stripper(content) if stripper else content


def _rewrite_zip(data: bytes, clean_part: Callable[[str, bytes], bytes]) -> bytes:
    with zipfile.ZipFile(BytesIO(data)) as source:
        infos = source.infolist()
        names = {info.filename for info in infos}
        if len(infos) > MAX_ZIP_ENTRIES or len(names) != len(infos):
            raise _Malformed("too many or duplicate entries")
        # Declared sizes bound what zipfile will inflate, so checking them first stops zip bombs.
        if sum(info.file_size for info in infos) > MAX_UNZIPPED_BYTES:
            raise _Malformed("too large once inflated")
        out = BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for info in infos:
                target.writestr(_fresh_zip_info(info), clean_part(info.filename, source.read(info)))
    return out.getvalue()


def _fresh_zip_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    # A fresh entry drops the original timestamps (local time reveals a time zone), extra
    # fields (Unix uid/gid, NTFS times) and comments. Order is kept, so ODF's mimetype stays first.
    fresh = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
    stored = info.compress_type == zipfile.ZIP_STORED or info.filename == "mimetype"
    fresh.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    fresh.external_attr = (0o40755 << 16 | 0x10) if info.is_dir() else 0o644 << 16
    return fresh


_CLEANERS: dict[str, Callable[[bytes], bytes]] = {
    "jpeg": _clean_jpeg,
    "png": _clean_png,
    "webp": _clean_webp,
    "heic": _clean_heic,
    "pdf": _clean_pdf,
    **dict.fromkeys(filetypes.OOXML_KINDS, _clean_ooxml),
    **dict.fromkeys(filetypes.ODF_KINDS, _clean_odf),
}
