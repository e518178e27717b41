"""Metadata stripping, on real files made here in memory, each carrying MARKER strings."""

from __future__ import annotations

import functools
import io
import random
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pikepdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from app.crypto import Sanitised
from app.media import strip as sanitize
from app.media.strip import MAX_STRIP_BYTES, StripResult, strip_metadata
from tests.support.diskwatch import recorded_writes, refuse_temporary_files

MARKER = b"MARKER-"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><dc:creator>MARKER-XMP</dc:creator></rdf:RDF></x:xmpmeta>'
TRAILER = b"MARKER-TRAILER after EOI, where phones append MPF images"
ORIENTATION = ExifTags.Base.Orientation
EPOCH = (1980, 1, 1, 0, 0, 0)


def strip(data: bytes) -> StripResult:
    # A misleading name and type: only magic bytes may decide the format.
    return strip_metadata(data)


# -- fixture generators ------------------------------------------------------------------------------


def picture(size: tuple[int, int] = (64, 48)) -> Image.Image:
    rng = random.Random(7)
    width, height = size
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), x * 4 % 256, y * 5 % 256) for y in range(height) for x in range(width)])
    return image


def camera_exif(*, orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "MARKER-MAKE"
    exif[ExifTags.Base.Model] = "MARKER-MODEL"
    exif[ExifTags.Base.Artist] = "MARKER-ARTIST"
    exif[ExifTags.Base.BodySerialNumber] = "MARKER-SERIAL"
    exif[ORIENTATION] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (19.0, 25.0, 56.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (99.0, 7.0, 58.0)
    gps[ExifTags.GPS.GPSMapDatum] = "MARKER-GPS"
    return exif


def icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


@functools.cache
def make_jpeg(progressive: bool = False) -> bytes:
    out = io.BytesIO()
    picture().save(
        out,
        "JPEG",
        exif=camera_exif(),
        xmp=XMP,
        comment=b"MARKER-COMMENT",
        icc_profile=icc_profile(),
        progressive=progressive,
        quality=90,
    )
    data = out.getvalue()
    iptc = jpeg_segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0f\x1c\x02\x50\x00\x0bMARKER-IPTC")
    return data[:2] + iptc + data[2:] + TRAILER


@functools.cache
def make_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "MARKER-AUTHOR")
    info.add_text("Comment", "MARKER-ZTXT", zip=True)
    info.add_itxt("Location", "MARKER-ITXT 19.43N 99.13W", lang="es", tkey="Ubicación")
    info.add(b"tIME", struct.pack(">HBBBBB", 2024, 5, 1, 12, 0, 0))
    info.add(b"caBX", b"MARKER-C2PA")
    info.add(b"tEXt", b"Late\x00MARKER-LATE", after_idat=True)
    out = io.BytesIO()
    picture().save(out, "PNG", pnginfo=info, exif=camera_exif(), icc_profile=icc_profile())
    return out.getvalue()


@functools.cache
def make_webp() -> bytes:
    out = io.BytesIO()
    picture().save(out, "WEBP", exif=camera_exif(), xmp=XMP, icc_profile=icc_profile(), lossless=True)
    return out.getvalue()


@functools.cache
def make_animated_webp() -> bytes:
    out = io.BytesIO()
    frames = [picture(), picture().rotate(180)]
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], exif=camera_exif(), xmp=XMP)
    return out.getvalue()


@functools.cache
def make_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    pdf.add_blank_page(page_size=(200, 200))
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:creator"] = ["MARKER-XMP"]
    for key in ("/Author", "/Creator", "/Producer", "/Title", "/Subject", "/Keywords"):
        pdf.docinfo[key] = f"MARKER-{key[1:].upper()}"
    pdf.docinfo["/CreationDate"] = "D:20240501120000-06'00'"
    photo = pikepdf.Stream(pdf, make_jpeg())
    photo.Type, photo.Subtype, photo.Filter = pikepdf.Name.XObject, pikepdf.Name.Image, pikepdf.Name.DCTDecode
    photo.Width, photo.Height, photo.BitsPerComponent = 64, 48, 8
    photo.ColorSpace = pikepdf.Name.DeviceRGB
    page = pdf.pages[0].obj
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=photo))
    page.Contents = pdf.make_stream(b"q 64 0 0 48 10 10 cm /Im0 Do Q")
    page.PieceInfo = pikepdf.Dictionary(Editor=pikepdf.Dictionary(Private="MARKER-PIECE"))
    comment = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Text, Rect=[0, 0, 20, 20], Contents="Nota", T="MARKER-ANNOT"
    )
    page.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(comment)]))
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def make_zip(entries: list[tuple[str, bytes]], *, stored: frozenset[str] = frozenset()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.comment = b"MARKER-ZIPCOMMENT"
        for name, content in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 12, 34, 56))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_DOCUMENT = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{W_NS}">'
    "<w:body><w:p><w:r><w:t>Denuncia anónima</w:t></w:r></w:p></w:body></w:document>"
).encode()
DOCX_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Default Extension="jpeg" ContentType="image/jpeg"/>'
    b'<Override PartName="/word/document.xml"'
    b' ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b'<Override PartName="/docProps/core.xml"'
    b' ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    b'<Override PartName="/docProps/app.xml"'
    b' ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
    b'<Override PartName="/docProps/custom.xml"'
    b' ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/></Types>'
)
DOCX_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
    b' Target="word/document.xml"/>'
    b'<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"'
    b' Target="docProps/core.xml"/>'
    b'<Relationship Id="rId3"'
    b' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties"'
    b' Target="docProps/app.xml"/>'
    b'<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"'
    b' Target="docProps/custom.xml"/></Relationships>'
)
DOCX_CORE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    b"<dc:creator>MARKER-CREATOR</dc:creator><cp:lastModifiedBy>MARKER-EDITOR</cp:lastModifiedBy>"
    b'<dcterms:created xsi:type="dcterms:W3CDTF">2024-05-01T12:00:00Z</dcterms:created></cp:coreProperties>'
)
DOCX_APP = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    b"<Application>MARKER-APPLICATION</Application><Company>MARKER-COMPANY</Company>"
    b"<Manager>MARKER-MANAGER</Manager></Properties>"
)
DOCX_CUSTOM = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
    b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    b'<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Owner">'
    b"<vt:lpwstr>MARKER-CUSTOM</vt:lpwstr></property></Properties>"
)


@functools.cache
def make_docx() -> bytes:
    return make_zip(
        [
            ("[Content_Types].xml", DOCX_CONTENT_TYPES),
            ("_rels/.rels", DOCX_RELS),
            ("word/document.xml", DOCX_DOCUMENT),
            ("word/media/image1.jpeg", make_jpeg()),
            ("docProps/core.xml", DOCX_CORE),
            ("docProps/app.xml", DOCX_APP),
            ("docProps/custom.xml", DOCX_CUSTOM),
        ]
    )


ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
ODF_NS = (
    b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    b' xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
)
ODT_CONTENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content ' + ODF_NS + b' office:version="1.3">'
    b"<office:body><office:text><text:p>Denuncia an\xc3\xb3nima</text:p></office:text></office:body>"
    b"</office:document-content>"
)
ODT_META = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta ' + ODF_NS + b' office:version="1.3">'
    b"<office:meta><meta:initial-creator>MARKER-INITIAL</meta:initial-creator><dc:creator>MARKER-CREATOR</dc:creator>"
    b"<meta:creation-date>2024-05-01T12:00:00</meta:creation-date><dc:date>2024-05-02T08:00:00</dc:date>"
    b"<meta:generator>MARKER-GENERATOR</meta:generator>"
    b'<meta:user-defined meta:name="Owner">MARKER-USER</meta:user-defined></office:meta></office:document-meta>'
)
ODT_MANIFEST = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
    b'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
    b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    b'<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
    b'<manifest:file-entry manifest:full-path="Pictures/photo.png" manifest:media-type="image/png"/>'
    b"</manifest:manifest>"
)


@functools.cache
def make_odt() -> bytes:
    return make_zip(
        [
            ("mimetype", ODT_MIMETYPE),
            ("META-INF/manifest.xml", ODT_MANIFEST),
            ("content.xml", ODT_CONTENT),
            ("meta.xml", ODT_META),
            ("Pictures/photo.png", make_png()),
        ],
        stored=frozenset({"mimetype"}),
    )


SAMPLES: dict[str, Callable[[], bytes]] = {
    "jpeg": make_jpeg,
    "png": make_png,
    "webp": make_webp,
    "pdf": make_pdf,
    "docx": make_docx,
    "odt": make_odt,
}


# -- helpers ---------------------------------------------------------------------------------------------


def assert_no_markers(data: bytes) -> None:
    assert MARKER not in data, data[max(0, data.find(MARKER) - 40) : data.find(MARKER) + 40]


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.tobytes()


def assert_clean_image(data: bytes, pillow_format: str, *, orientation: int | None = 6) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == pillow_format
        exif = image.getexif()
        assert dict(exif) == ({ORIENTATION: orientation} if orientation else {})
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert not {"xmp", "icc_profile", "comment", "photoshop"} & image.info.keys()


def png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, pos)
        types.append(chunk_type)
        pos += 12 + length
    return types


def zip_entries(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def zip_pairs(data: bytes) -> list[tuple[str, bytes]]:
    return [(info.filename, content) for info, content in zip_entries(data)]


def assert_clean_zip(data: bytes) -> None:
    assert_no_markers(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.comment == b""
    for info, content in zip_entries(data):
        assert_no_markers(content)
        assert info.date_time == EPOCH
        assert info.extra == b""
        if info.filename.endswith(".xml"):
            ElementTree.fromstring(content)  # still well-formed


# -- images ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_loses_exif_gps_xmp_iptc_icc_comment_and_trailer(progressive: bool) -> None:
    original = make_jpeg(progressive)
    assert original.count(MARKER) >= 7

    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "jpeg")
    assert_no_markers(result.data)
    assert camera_exif().tobytes() not in result.data
    assert_clean_image(result.data, "JPEG")
    assert pixels(result.data) == pixels(original)
    # Lossless: everything from the first scan to EOI is copied bit for bit.
    scans = original[original.index(b"\xff\xda") : original.index(TRAILER)]
    assert result.data.endswith(scans)


def test_jpeg_without_orientation_gets_no_exif_at_all() -> None:
    out = io.BytesIO()
    picture().save(out, "JPEG", exif=camera_exif(orientation=1))
    result = strip(out.getvalue())
    assert result.status is Sanitised.STRIPPED
    assert b"Exif" not in result.data
    assert_clean_image(result.data, "JPEG", orientation=None)


def test_cmyk_jpeg_keeps_the_adobe_segment_its_colours_need() -> None:
    out = io.BytesIO()
    picture().convert("CMYK").save(out, "JPEG", exif=camera_exif(), comment=b"MARKER-COMMENT")
    result = strip(out.getvalue())
    assert result.status is Sanitised.STRIPPED
    assert_no_markers(result.data)
    assert b"Adobe" in result.data
    assert pixels(result.data) == pixels(out.getvalue())


def test_decompression_bombs_fail_without_raising() -> None:
    original = make_jpeg()
    sof = original.index(b"\xff\xc0")
    bomb = original[: sof + 5] + struct.pack(">HH", 60000, 60000) + original[sof + 9 :]
    assert strip(bomb) == StripResult(bomb, Sanitised.FAILED, "jpeg")


def test_jpeg_cut_short_inside_its_image_data_is_still_cleaned() -> None:
    original = make_jpeg()
    cut = original[: original.index(b"\xff\xda") + 400]
    result = strip(cut)
    assert result.status is Sanitised.STRIPPED
    assert_no_markers(result.data)
    assert result.data.endswith(b"\xff\xd9")


def test_png_loses_text_exif_time_icc_and_private_chunks() -> None:
    original = make_png()
    with Image.open(io.BytesIO(original)) as image:
        image.load()
        assert {"Author", "Comment", "Location", "Late"} <= image.info.keys()

    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "png")
    assert_no_markers(result.data)
    assert set(png_chunk_types(result.data)) == {b"IHDR", b"eXIf", b"IDAT", b"IEND"}
    assert_clean_image(result.data, "PNG")
    with Image.open(io.BytesIO(result.data)) as image:
        image.load()
        assert not {"Author", "Comment", "Location", "Late"} & image.info.keys()
    assert pixels(result.data) == pixels(original)


def test_webp_loses_exif_xmp_and_icc() -> None:
    original = make_webp()
    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "webp")
    assert_no_markers(result.data)
    assert_clean_image(result.data, "WEBP")
    assert int.from_bytes(result.data[4:8], "little") == len(result.data) - 8
    assert result.data[20] & 0x2C == 0x08  # VP8X flags: EXIF (orientation only), no ICC, no XMP
    assert pixels(result.data) == pixels(original)


def test_animated_webp_keeps_its_frames() -> None:
    result = strip(make_animated_webp())
    assert result.status is Sanitised.STRIPPED
    assert_no_markers(result.data)
    with Image.open(io.BytesIO(result.data)) as image:
        assert getattr(image, "n_frames", 1) == 2


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_stripping_twice_changes_nothing(name: str) -> None:
    once = strip(SAMPLES[name]())
    twice = strip(once.data)
    assert (twice.status, twice.data) == (Sanitised.NONE_FOUND, once.data)


def test_heic_items_are_blanked_in_place() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(picture()).save(out, exif=camera_exif(orientation=1).tobytes(), xmp=XMP, quality=90)
    original = out.getvalue()
    assert original.count(MARKER) >= 5

    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "heic")
    assert_no_markers(result.data)
    assert len(result.data) == len(original)
    image = pillow_heif.open_heif(io.BytesIO(result.data))
    exif = Image.Exif()
    exif.load(image.info["exif"])
    assert len(exif) == 0
    assert image.info["xmp"].strip() == b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    assert image.to_pillow().tobytes() == pillow_heif.open_heif(io.BytesIO(original)).to_pillow().tobytes()


def test_heic_without_pillow_heif_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanitize, "_HAVE_HEIF", False)
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    assert strip(data) == StripResult(data, Sanitised.UNSUPPORTED, "heic")


# -- documents -------------------------------------------------------------------------------------------


def test_pdf_loses_docinfo_xmp_private_data_comment_authors_and_photo_exif() -> None:
    original = make_pdf()
    assert original.count(MARKER) >= 9

    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "pdf")
    assert_no_markers(result.data)
    with pikepdf.open(io.BytesIO(result.data)) as pdf:
        assert pikepdf.Name.Info not in pdf.trailer
        assert pikepdf.Name.Metadata not in pdf.Root
        assert len(pdf.pages) == 2
        page = pdf.pages[0].obj
        assert pikepdf.Name.PieceInfo not in page
        assert pikepdf.Name.T not in page.Annots[0]
        assert page.Annots[0].Contents == "Nota"
        photo = page.Resources.XObject.Im0.read_raw_bytes()
        # Streams may be compressed now: check their decoded form too.
        uncompressed = io.BytesIO()
        pdf.save(uncompressed, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.generalized)
        new_id = bytes(pdf.trailer.ID[0])
    with pikepdf.open(io.BytesIO(original)) as pdf:
        assert bytes(pdf.trailer.ID[0]) != new_id  # the creation-time ID could match the author's copy
    assert_no_markers(uncompressed.getvalue())
    assert_clean_image(photo, "JPEG")
    assert pixels(photo) == pixels(make_jpeg())


def test_docx_loses_properties_and_photo_exif_but_keeps_the_document() -> None:
    original = make_docx()
    result = strip(original)

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "docx")
    assert_clean_zip(result.data)
    assert [name for name, _ in zip_pairs(result.data)] == [name for name, _ in zip_pairs(original)]
    contents = dict(zip_pairs(result.data))
    assert contents["word/document.xml"] == DOCX_DOCUMENT
    assert contents["[Content_Types].xml"] == DOCX_CONTENT_TYPES
    assert contents["_rels/.rels"] == DOCX_RELS
    assert_clean_image(contents["word/media/image1.jpeg"], "JPEG")


def test_odt_loses_meta_and_keeps_mimetype_first_and_stored() -> None:
    result = strip(make_odt())

    assert (result.status, result.kind) == (Sanitised.STRIPPED, "odt")
    assert_clean_zip(result.data)
    entries = zip_entries(result.data)
    first, mimetype = entries[0]
    assert (first.filename, first.compress_type, mimetype) == ("mimetype", zipfile.ZIP_STORED, ODT_MIMETYPE)
    assert result.data[30:38] == b"mimetype"  # readers sniff the first local header
    contents = dict(zip_pairs(result.data))
    assert contents["content.xml"] == ODT_CONTENT
    assert b'office:version="1.3"' in contents["meta.xml"]
    assert_clean_image(contents["Pictures/photo.png"], "PNG")


@pytest.mark.parametrize(("part", "kind"), [("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx")])
def test_other_office_packages_are_recognised(part: str, kind: str) -> None:
    package = make_zip([("[Content_Types].xml", DOCX_CONTENT_TYPES), (part, b"<x/>"), ("docProps/app.xml", DOCX_APP)])
    result = strip(package)
    assert (result.status, result.kind) == (Sanitised.STRIPPED, kind)
    assert_clean_zip(result.data)


@pytest.mark.parametrize("name", ["docx", "odt"])
def test_rewritten_zips_are_deterministic(name: str) -> None:
    once = strip(SAMPLES[name]())
    assert strip(once.data) == StripResult(once.data, Sanitised.NONE_FOUND, name)


# -- everything else -----------------------------------------------------------------------------------


def test_plain_text_is_left_alone() -> None:
    data = "Hola: el camión sale a las 3, calle Juárez.\n".encode()
    assert strip(data) == StripResult(data, Sanitised.NONE_FOUND, "text")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (random.Random(1).randbytes(4096), "unknown"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(64), "video"),
        (b"GIF89a" + bytes(32), "gif"),
    ],
)
def test_unknown_formats_are_unsupported_and_unchanged(data: bytes, kind: str) -> None:
    assert strip(data) == StripResult(data, Sanitised.UNSUPPORTED, kind)


def test_plain_zip_is_unsupported() -> None:
    data = make_zip([("photo.jpg", make_jpeg())])
    assert strip(data) == StripResult(data, Sanitised.UNSUPPORTED, "zip")


def test_oversized_input_is_too_large_and_unchanged() -> None:
    data = make_jpeg() + bytes(MAX_STRIP_BYTES)
    result = strip(data)
    assert (result.status, result.kind) == (Sanitised.TOO_LARGE, "jpeg")
    assert result.data is data


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (make_jpeg()[:40], "jpeg"),  # cut inside the EXIF segment
        (make_png()[:100], "png"),
        (make_webp()[:60], "webp"),
        (b"%PDF-1.7\n" + b"garbage " * 40, "pdf"),
        (make_pdf()[:300], "pdf"),
        (b"PK\x03\x04" + bytes(60), "zip"),
        (make_docx()[:-30], "zip"),
    ],
)
def test_broken_files_fail_unchanged(data: bytes, kind: str) -> None:
    assert strip(data) == StripResult(data, Sanitised.FAILED, kind)


def test_zip_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sanitize, "MAX_UNZIPPED_BYTES", 64 * 1024)
    data = make_zip([*zip_pairs(make_docx()), ("word/padding.bin", bytes(128 * 1024))])
    assert strip(data) == StripResult(data, Sanitised.FAILED, "docx")


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(SAMPLES)),
    edits=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=6),
    cut=st.none() | st.integers(0, 2**31),
)
def test_damaged_files_never_raise(name: str, edits: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(SAMPLES[name]())
    for position, value in edits:
        data[position % len(data)] = value
    damaged = bytes(data[: cut % len(data)] if cut is not None else data)

    result = strip(damaged)

    if result.status in (Sanitised.UNSUPPORTED, Sanitised.FAILED):
        assert result.data is damaged


# -- nothing reaches the disk ------------------------------------------------------------------------------


def test_nothing_touches_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [make() for make in SAMPLES.values()]
    samples += [make_jpeg(progressive=True), make_animated_webp(), make_pdf()[:300], make_docx()[:-30]]
    for data in samples:
        strip(data)  # import every plugin before watching, so no bytecode is written meanwhile
    spool = tmp_path / "tmp"
    spool.mkdir()
    refuse_temporary_files(monkeypatch, spool)

    with recorded_writes() as writes:
        results = [strip(data) for data in samples]

    assert writes == []
    assert list(spool.iterdir()) == []
    assert [r.status for r in results].count(Sanitised.STRIPPED) == len(SAMPLES) + 2


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_stripping_a_large_image_makes_one_copy_of_its_data(kind: str) -> None:
    # The image data (scan or IDAT) is carried over as views and joined once: a 32 MiB photo costs
    # one more 32 MiB while it is cleaned, which is what the strip memory budget reserves.
    image = bytes(range(1, 255)) * (4 * 1024 * 1024 // 254)  # no 0xFF: one unbroken JPEG scan
    if kind == "jpeg":
        sos = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        data = b"\xff\xd8" + jpeg_segment(0xFE, MARKER) + sos + image + b"\xff\xd9"
        cleaner = sanitize._strip_jpeg
    else:
        ihdr = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
        data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", image) + _png_chunk(b"IEND", b"")
        cleaner = sanitize._strip_png
    tracemalloc.start()
    try:
        cleaned = cleaner(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image in cleaned
    assert peak < 1.2 * len(data)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


PIXEL_BOMB_CHILD = """
import resource, struct, sys, zlib
from app.media.strip import strip_metadata

def chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

side = 16000  # 256 megapixels of grey: a few hundred KB compressed
packer = zlib.compressobj(9)
row = bytes(1 + side)
idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
png = (
    b"\\x89PNG\\r\\n\\x1a\\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    + chunk(b"tEXt", b"Author\\x00someone")
    + chunk(b"IDAT", idat)
    + chunk(b"IEND", b"")
)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = strip_metadata(png)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(png), result.status, b"someone" in result.data, (after - before) // 1024)
"""


def test_a_small_png_of_huge_dimensions_is_cleaned_without_decoding_its_pixels() -> None:
    # Checking the cleaned PNG once decoded every pixel: this small file took about 160 MB more.
    child = subprocess.run(
        [sys.executable, "-c", PIXEL_BOMB_CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    size, status, author_left, grown_mib = child.stdout.split()
    assert int(size) < 2 * 1024 * 1024
    assert (status, author_left) == ("stripped", "False")
    assert int(grown_mib) < 32, f"stripping grew the process by {grown_mib} MiB"
