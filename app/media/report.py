"""Metadata reports and safe previews, for editors checking a leaked file.

Everything works on bytes in memory: a decrypted file must never reach the disk, not even as a
temporary file. The format is chosen by magic bytes only (app/media/filetypes.py), since the name and
declared type come from the sender and prove nothing. Nothing here raises for a bad file: a file
that does not parse gets a report with a warning, or no preview.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from io import BytesIO
from typing import NoReturn
from xml.parsers import expat

import pikepdf
from pikepdf import Name
from PIL import ExifTags, Image, ImageOps

from app.media import filetypes
from app.media.findings import COULD_NOT_READ, MetadataReport
from app.media.pdfobjects import every_dictionary

# Parsing a few hundred MiB is already slow; a file larger than this gets no report or preview.
MAX_INSPECT_BYTES = 256 * 1024 * 1024
# 50 MP decodes to at most 200 MB of RGBA: enough for phone cameras, too little to exhaust memory.
MAX_PREVIEW_PIXELS = 50_000_000
PREVIEW_SIDE = 1024
# Property parts, XMP packets and PNG text are small; anything larger is refused before inflating.
MAX_XML_BYTES = 2 * 1024 * 1024
MAX_VALUE_CHARS = 300
MAX_TEXT_CHUNKS = 32

_HAVE_HEIF = importlib.util.find_spec("pillow_heif") is not None


class _Refused(ValueError):
    """A part this module will not parse; the message is shown to editors."""


# What a damaged or hostile file can make the parsers raise. Pillow's EXIF reader has raised
# lookup and type errors on malformed tags, so those count as bad input here too.
_PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    LookupError,
    TypeError,
    ArithmeticError,
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
    expat.ExpatError,
    pikepdf.PdfError,
    Image.DecompressionBombError,
    # Only a warning in production, where our own pixel cap then refuses the image; an
    # exception under `-W error`, where it must still mean "no preview" rather than a crash.
    Image.DecompressionBombWarning,
)


def metadata_report(data: bytes, content_type: str, filename: str) -> MetadataReport:
    """What the file says about who made it, with what, when and where.

    Never raises for bad input: a file that does not parse gets a warning, and whatever fields
    were read before the failure.
    """
    # A sender-controlled label must never choose the parser.
    del content_type, filename
    kind = _detect(data)
    notes = _Notes()
    if len(data) > MAX_INSPECT_BYTES:
        notes.warn("This file is too large to inspect here.")
        return notes.report(kind)
    try:
        if kind == "zip":
            kind = filetypes.detect_zip(data)
        reader = _READERS.get(kind)
        if reader is not None:
            reader(data, notes)
    except _PARSE_ERRORS:
        notes.warn(COULD_NOT_READ)
    return notes.report(kind)


def safe_preview(data: bytes) -> bytes | None:
    """A metadata-free PNG of at most PREVIEW_SIDE pixels a side, or None if this is no raster image.

    The file is decoded here, in memory, so the editor's browser never parses the original.
    """
    kind = _detect(data)
    if kind not in _PILLOW_FORMATS and kind != "heic":
        return None  # SVG, PDF and the rest: never rendered
    if len(data) > MAX_INSPECT_BYTES or (kind == "heic" and not _HAVE_HEIF):
        return None
    try:
        image = _decode_heic(data) if kind == "heic" else _decode_raster(data, _PILLOW_FORMATS[kind])
        return None if image is None else _encode_preview(image)
    except _PARSE_ERRORS:
        return None


# -- collecting fields --------------------------------------------------------------------------

_LABELS = {
    "jpeg": "JPEG image",
    "png": "PNG image",
    "webp": "WebP image",
    "heic": "HEIC image",
    "tiff": "TIFF image",
    "gif": "GIF image",
    "pdf": "PDF document",
    "docx": "Word document",
    "xlsx": "Excel spreadsheet",
    "pptx": "PowerPoint presentation",
    "odt": "OpenDocument text",
    "ods": "OpenDocument spreadsheet",
    "odp": "OpenDocument presentation",
    "odg": "OpenDocument drawing",
}


@dataclass
class _Notes:
    fields: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, label: str, value: str | None) -> None:
        text = _clean(value or "")
        if text:
            self.fields.append((_clean(label), text))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def report(self, kind: str) -> MetadataReport:
        return MetadataReport(_LABELS.get(kind, "unknown"), list(self.fields), list(self.warnings))


def _clean(value: str) -> str:
    # Values come from the file. Control and format characters (bidi overrides among them) could
    # disguise a value or break the page, and a huge value would drown the report.
    value = value[: 4 * MAX_VALUE_CHARS]
    kept = "".join(ch for ch in value if ch in "\t\n\r" or unicodedata.category(ch)[0] != "C")
    text = " ".join(kept.split())
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").rstrip("\x00")
    return str(value).rstrip("\x00")


def _detect(data: bytes) -> str:
    # A crafted file can start like a video and still open as a PDF, zip or TIFF file in a reader of
    # that format. Editors need to hear what such a reader would find, so it is read as that here.
    return filetypes.detect(data, media_last=True)


# -- images --------------------------------------------------------------------------------------

_IFD0_FIELDS = (
    (ExifTags.Base.Make, "Camera make"),
    (ExifTags.Base.Model, "Camera model"),
    (ExifTags.Base.Software, "Software"),
    (ExifTags.Base.Artist, "Artist"),
    (ExifTags.Base.Copyright, "Copyright"),
    (ExifTags.Base.DateTime, "Date modified"),
)
_EXIF_IFD_FIELDS = (
    (ExifTags.Base.DateTimeOriginal, "Date taken"),
    (ExifTags.Base.OffsetTimeOriginal, "Time zone offset"),
    (ExifTags.Base.LensMake, "Lens make"),
    (ExifTags.Base.LensModel, "Lens model"),
    (ExifTags.Base.BodySerialNumber, "Camera serial number"),
    (ExifTags.Base.LensSerialNumber, "Lens serial number"),
    (ExifTags.Base.CameraOwnerName, "Camera owner"),
    (ExifTags.Base.ImageUniqueID, "Image unique ID"),
)
_ORIENTATIONS = {
    1: "1 (normal)",
    2: "2 (mirrored)",
    3: "3 (rotated 180°)",
    4: "4 (mirrored vertically)",
    5: "5 (mirrored, rotated 270° clockwise)",
    6: "6 (rotated 90° clockwise)",
    7: "7 (mirrored, rotated 90° clockwise)",
    8: "8 (rotated 270° clockwise)",
}
_XMP_FIELDS = (
    ("{http://ns.adobe.com/xap/1.0/}CreatorTool", "XMP creator tool"),
    ("{http://purl.org/dc/elements/1.1/}creator", "XMP author"),
)


def _read_pillow_image(data: bytes, notes: _Notes, pillow_format: str) -> None:
    # Image.open parses headers only; no pixel is decoded for a report.
    with Image.open(BytesIO(data), formats=[pillow_format]) as image:
        xmp = image.info.get("xmp")
        _describe_image(notes, image.size, image.getexif(), xmp if isinstance(xmp, bytes) else None)
        notes.add("Comment", _as_text(image.info.get("comment")))


def _read_jpeg(data: bytes, notes: _Notes) -> None:
    _read_pillow_image(data, notes, "JPEG")
    if _jpeg_truncated(data):
        notes.warn("This image seems cut short: its image data does not end properly.")


def _jpeg_truncated(data: bytes) -> bool:
    """True if no end-of-image marker follows the start of the main image's scan."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            pos += 1 if marker == 0xFF else 2  # fill bytes and markers without a length
            continue
        if marker == 0xDA:
            # Scan data stuffs every 0xFF, so an EOI after this point is a real one.
            return data.rfind(b"\xff\xd9") < pos
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return True


def _read_heic(data: bytes, notes: _Notes) -> None:
    if not _HAVE_HEIF:
        notes.warn("HEIC support is not installed, so this image could not be read.")
        return
    import pillow_heif  # optional, as in app/media/strip.py: never registered as a global Pillow opener

    heif = pillow_heif.open_heif(BytesIO(data))
    exif = Image.Exif()
    raw_exif, xmp = heif.info.get("exif"), heif.info.get("xmp")
    if isinstance(raw_exif, bytes):
        exif.load(raw_exif)
    _describe_image(notes, heif.size, exif, xmp if isinstance(xmp, bytes) else None)


def _describe_image(notes: _Notes, size: tuple[int, int], exif: Image.Exif, xmp: bytes | None) -> None:
    notes.add("Dimensions", f"{size[0]} × {size[1]} pixels")
    for tag, label in _IFD0_FIELDS:
        notes.add(label, _as_text(exif.get(tag)))
    orientation = exif.get(ExifTags.Base.Orientation)
    if orientation is not None:
        notes.add("Orientation", _ORIENTATIONS.get(orientation, str(orientation)))
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    for tag, label in _EXIF_IFD_FIELDS:
        notes.add(label, _as_text(exif_ifd.get(tag)))
    _describe_gps(notes, exif.get_ifd(ExifTags.IFD.GPSInfo))
    _describe_xmp(notes, xmp)


def _describe_gps(notes: _Notes, gps: Mapping[int, object]) -> None:
    latitude = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "S", 90)
    longitude = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "W", 180)
    altitude = _number(gps.get(ExifTags.GPS.GPSAltitude))
    if latitude is not None:
        notes.add("GPS latitude", str(latitude))
    if longitude is not None:
        notes.add("GPS longitude", str(longitude))
    if altitude is not None:
        below = gps.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01")
        notes.add("GPS altitude", f"{-altitude if below else altitude:.1f} m")
    if latitude is not None or longitude is not None:
        notes.warn("This image records the place where it was taken (GPS).")


def _degrees(value: object, ref: object, negative_ref: str, limit: float) -> float | None:
    """Signed decimal degrees from EXIF (degrees, minutes, seconds) rationals, or None."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    parts = [_number(part) for part in value]
    if any(part is None or part < 0 for part in parts):
        return None
    degrees = sum((part or 0.0) / scale for part, scale in zip(parts, (1, 60, 3600), strict=True))
    if degrees > limit:
        return None
    negative = (_as_text(ref) or "").strip().upper() == negative_ref
    return round(-degrees if negative else degrees, 6)


def _number(value: object) -> float | None:
    # EXIF rationals with a zero denominator come back as NaN rather than raising.
    number = float(value) if isinstance(value, numbers.Real) else math.nan
    return number if math.isfinite(number) else None


def _describe_xmp(notes: _Notes, xmp: bytes | None) -> None:
    if not xmp:
        return
    notes.add("XMP metadata", "present")
    try:
        values = _xml_values(xmp.rstrip(b"\x00 \t\r\n"), frozenset(name for name, _ in _XMP_FIELDS))
    except _PARSE_ERRORS:
        notes.warn("The XMP metadata could not be read.")
        return
    for name, label in _XMP_FIELDS:
        notes.add(label, values.get(name))


# -- PNG -----------------------------------------------------------------------------------------

_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_XMP_KEY = "XML:com.adobe.xmp"


def _read_png(data: bytes, notes: _Notes) -> None:
    # Pillow only sees text chunks before the image data, and loads every pixel to find the rest,
    # so the chunks are walked here.
    with Image.open(BytesIO(data), formats=["PNG"]) as image:
        size = image.size
    exif, xmp, complete = Image.Exif(), None, False
    texts: list[tuple[str, str]] = []
    for kind, body in _png_chunks(data):
        complete = kind == b"IEND"
        if kind == b"eXIf":
            exif.load(body)
        elif kind in _PNG_TEXT_CHUNKS and len(texts) <= MAX_TEXT_CHUNKS:
            key, text = _png_text(kind, body)
            if key == _PNG_XMP_KEY:
                xmp = text.encode()
            else:
                texts.append((key, text))
    _describe_image(notes, size, exif, xmp)
    for key, text in texts[:MAX_TEXT_CHUNKS]:
        notes.add(f"PNG text: {key}", text)
    if len(texts) > MAX_TEXT_CHUNKS:
        notes.warn(f"This image has more than {MAX_TEXT_CHUNKS} text chunks; only the first are shown.")
    if not complete:
        notes.warn("This image seems cut short: it has no end chunk.")


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = len(filetypes.PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            return
        yield kind, body
        if kind == b"IEND":
            return
        pos += 12 + length


def _png_text(kind: bytes, body: bytes) -> tuple[str, str]:
    key, _, rest = body.partition(b"\x00")
    if kind == b"tEXt":
        return key.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":
        return key.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
    compressed = rest[:1] == b"\x01"
    _language, _, rest = rest[2:].partition(b"\x00")
    _translated_key, _, text = rest.partition(b"\x00")
    return key.decode("latin-1"), (_inflate(text) if compressed else text).decode("utf-8", "replace")


def _inflate(compressed: bytes) -> bytes:
    # Deflate reaches ratios near 1000:1, so the output is capped rather than trusted.
    text = zlib.decompressobj().decompress(compressed, MAX_XML_BYTES + 1)
    if len(text) > MAX_XML_BYTES:
        raise _Refused("it is too large once decompressed")
    return text


# -- PDF -----------------------------------------------------------------------------------------

_PDF_INFO_FIELDS = (
    (Name.Title, "Title"),
    (Name.Author, "Author"),
    (Name.Creator, "Creator (application)"),
    (Name.Producer, "Producer"),
    (Name.CreationDate, "Created"),
    (Name.ModDate, "Modified"),
)


def _read_pdf(data: bytes, notes: _Notes) -> None:
    try:
        # Explicit conversion keeps every value a pikepdf object, which the scan below relies on.
        pdf = pikepdf.open(BytesIO(data), conversion_mode="explicit")
    except pikepdf.PasswordError:
        notes.add("Encrypted", "yes, with a password")
        notes.warn("This PDF needs a password to open, so its metadata could not be read.")
        return
    with pdf:
        notes.add("Pages", str(len(pdf.pages)))
        notes.add("Encrypted", "yes" if pdf.is_encrypted else "no")
        info = pdf.trailer.get(Name.Info)
        for key, label in _PDF_INFO_FIELDS:
            value = info.get(key) if isinstance(info, pikepdf.Dictionary) else None
            notes.add(label, str(value) if isinstance(value, pikepdf.String) else None)
        _describe_xmp(notes, _pdf_xmp(pdf.Root.get(Name.Metadata), notes))
        _describe_pdf_risks(pdf, notes)


def _pdf_xmp(stream: object, notes: _Notes) -> bytes | None:
    if not isinstance(stream, pikepdf.Stream):
        return None
    # pikepdf would inflate the stream whole; inflating it here keeps the output bounded.
    raw, filters = stream.read_raw_bytes(), stream.get(Name.Filter)
    if filters is None:
        return raw[:MAX_XML_BYTES]
    if filters == Name.FlateDecode or (isinstance(filters, pikepdf.Array) and list(filters) == [Name.FlateDecode]):
        return _inflate(raw)
    notes.add("XMP metadata", "present (in an encoding not read here)")
    return None


def _describe_pdf_risks(pdf: pikepdf.Pdf, notes: _Notes) -> None:
    javascript = embedded = False
    for obj in every_dictionary(pdf):
        # Actions name their type in /S and carry code in /JS; file specs hold files in /EF.
        javascript = javascript or Name.JS in obj or obj.get(Name.S) == Name.JavaScript
        embedded = embedded or Name.EF in obj or obj.get(Name.Type) == Name.EmbeddedFile
    if javascript:
        notes.warn("This PDF contains JavaScript. Do not open it in a browser or PDF reader on a networked computer.")
    if embedded:
        notes.warn("This PDF has files embedded in it; they are not inspected here.")


# -- Office Open XML and OpenDocument --------------------------------------------------------------

_CP = "{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_EXTENDED = "{http://schemas.openxmlformats.org/officeDocument/2006/extended-properties}"
_ODF_META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
_OOXML_PARTS = {
    "docProps/core.xml": (
        (f"{_DC}title", "Title"),
        (f"{_DC}creator", "Author"),
        (f"{_CP}lastModifiedBy", "Last modified by"),
        (f"{_DCTERMS}created", "Created"),
        (f"{_DCTERMS}modified", "Modified"),
        (f"{_CP}revision", "Revision"),
    ),
    "docProps/app.xml": (
        (f"{_EXTENDED}Application", "Application"),
        (f"{_EXTENDED}Company", "Company"),
        (f"{_EXTENDED}Template", "Template"),
    ),
}
_ODF_PARTS = {
    "meta.xml": (
        (f"{_DC}title", "Title"),
        (f"{_ODF_META}initial-creator", "Author"),
        (f"{_DC}creator", "Last modified by"),
        (f"{_ODF_META}creation-date", "Created"),
        (f"{_DC}date", "Modified"),
        (f"{_ODF_META}editing-cycles", "Revision"),
        (f"{_ODF_META}generator", "Application"),
    ),
}


def _read_ooxml(data: bytes, notes: _Notes) -> None:
    _read_zip_parts(data, notes, _OOXML_PARTS)


def _read_odf(data: bytes, notes: _Notes) -> None:
    _read_zip_parts(data, notes, _ODF_PARTS)


def _read_zip_parts(data: bytes, notes: _Notes, parts: Mapping[str, tuple[tuple[str, str], ...]]) -> None:
    with zipfile.ZipFile(BytesIO(data)) as archive:
        for part, wanted in parts.items():
            # One bad part should not hide what the others say.
            try:
                xml = _zip_member(archive, part)
                values = _xml_values(xml, frozenset(name for name, _ in wanted)) if xml is not None else {}
            except _Refused as e:
                notes.warn(f"{part} could not be read: {e}.")
                continue
            except _PARSE_ERRORS:
                notes.warn(f"{part} could not be read: it is malformed.")
                continue
            for name, label in wanted:
                notes.add(label, values.get(name))


def _zip_member(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    # zipfile never inflates past the declared size, so checking it first stops a zip bomb before
    # any work; the bounded read is a second guard.
    if info.file_size > MAX_XML_BYTES:
        raise _Refused("it is too large once unzipped")
    with archive.open(info) as member:
        content = member.read(MAX_XML_BYTES + 1)
    if len(content) > MAX_XML_BYTES:
        raise _Refused("it is too large once unzipped")
    return content


# -- XML -----------------------------------------------------------------------------------------


def _refuse_dtd(*_: object) -> NoReturn:
    # Entities are how XML bombs and external fetches work, and they can only be declared in a
    # DOCTYPE, which no metadata part needs.
    raise _Refused("it declares a DOCTYPE or entities, which are refused")


def _xml_values(xml: bytes, wanted: frozenset[str]) -> dict[str, str]:
    """Text of the wanted elements and attributes, keyed by {namespace}name, repeated values joined."""
    # expat directly (defusedxml is not installed): the handlers below refuse any DTD, so no
    # entity is ever defined, let alone expanded or fetched.
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    collector = _XmlCollector(wanted)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.text
    parser.Parse(xml, True)
    return {name: "; ".join(dict.fromkeys(values)) for name, values in collector.found.items()}


def _clark(name: str) -> str:
    return "{" + name if "}" in name else name


class _XmlCollector:
    """Gathers text inside wanted elements (one value per text run, for lists like rdf:li)."""

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        self.found: dict[str, list[str]] = {}
        self._depth = 0
        self._capture: tuple[str, int] | None = None
        self._runs: list[list[str]] = []

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self._depth += 1
        for key, value in attributes.items():  # XMP often stores a property as an attribute
            self._keep(_clark(key), value)
        if self._capture is None and _clark(name) in self.wanted:
            self._capture, self._runs = (_clark(name), self._depth), []
        if self._capture is not None:
            self._runs.append([])  # a child element starts a new text run

    def text(self, data: str) -> None:
        if self._capture is not None:
            self._runs[-1].append(data)

    def end(self, name: str) -> None:
        if self._capture is not None and self._capture[1] == self._depth:
            for run in self._runs:
                self._keep(self._capture[0], "".join(run))
            self._capture = None
        elif self._capture is not None:
            self._runs.append([])
        self._depth -= 1

    def _keep(self, name: str, value: str) -> None:
        if name in self.wanted and value.strip():
            self.found.setdefault(name, []).append(value.strip())


_READERS: dict[str, Callable[[bytes, _Notes], None]] = {
    "jpeg": _read_jpeg,
    "png": _read_png,
    "webp": lambda data, notes: _read_pillow_image(data, notes, "WEBP"),
    "tiff": lambda data, notes: _read_pillow_image(data, notes, "TIFF"),
    "gif": lambda data, notes: _read_pillow_image(data, notes, "GIF"),
    "heic": _read_heic,
    "pdf": _read_pdf,
    **dict.fromkeys(filetypes.OOXML_KINDS, _read_ooxml),
    **dict.fromkeys(filetypes.ODF_KINDS, _read_odf),
}


# -- previews ------------------------------------------------------------------------------------

_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "tiff": "TIFF"}


def _pixels_allowed(size: tuple[int, int]) -> bool:
    return 0 < size[0] * size[1] <= MAX_PREVIEW_PIXELS


def _decode_raster(data: bytes, pillow_format: str) -> Image.Image | None:
    with Image.open(BytesIO(data), formats=[pillow_format]) as image:
        # The header gives the size before a single pixel is decoded (the first frame, for GIF
        # and TIFF): the check must come before anything that loads.
        if not _pixels_allowed(image.size):
            return None
        image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG only: decode at 1/2 to 1/8 scale
        # Decodes, and turns the pixels the way the camera meant; returns a new, detached image.
        return ImageOps.exif_transpose(image)


def _decode_heic(data: bytes) -> Image.Image | None:
    import pillow_heif

    heif = pillow_heif.open_heif(BytesIO(data))
    if not _pixels_allowed(heif.size):
        return None
    # libheif applies the container's rotation and pillow-heif resets the EXIF orientation to 1,
    # so turning the result again by EXIF would be wrong; it is already upright.
    return heif.to_pillow()


def _encode_preview(image: Image.Image) -> bytes:
    # Palette and grey images with transparency go through RGBA: converting them straight to RGB
    # makes Pillow warn, and transparent pixels should show as the white page, not as hidden colours.
    mode = "RGBA" if image.has_transparency_data else "RGB"
    small = image.convert(mode)
    small.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    # A fresh canvas holds pixels only: no EXIF, ICC profile, text or other info from the original
    # can ride along into save().
    canvas = Image.new("RGB", small.size, "white")
    canvas.paste(small, mask=small.getchannel("A") if mode == "RGBA" else None)
    out = BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()
