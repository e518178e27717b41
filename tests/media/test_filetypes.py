"""File types from real files made here in memory: only the bytes decide, never a name."""

from __future__ import annotations

import io
import zipfile

import pikepdf
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, features

from app.media.filetypes import ODF_KINDS, OOXML_KINDS, PNG_SIGNATURE, detect, detect_zip
from tests.support.filesamples import make_zip

KINDS = {"jpeg", "png", "webp", "heic", "avif", "video", "zip", "pdf", "gif", "tiff", "unknown"}
# An MP4 file's first box: size 24, "ftyp", major brand isom, minor version, compatible brands.
MP4_FTYP = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


def image_bytes(pillow_format: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 8), "teal").save(out, pillow_format)
    return out.getvalue()


def pdf_bytes() -> bytes:
    out = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(out)
    return out.getvalue()


def ooxml(main_part: str) -> bytes:
    return make_zip([("[Content_Types].xml", b"<Types/>"), ("_rels/.rels", b"<Relationships/>"), (main_part, b"<x/>")])


def odf(subtype: str) -> bytes:
    mimetype = f"application/vnd.oasis.opendocument.{subtype}".encode()
    return make_zip([("mimetype", mimetype), ("content.xml", b"<office:document-content/>")])


# -- each kind, from its bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "kind"),
    [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("TIFF", "tiff")],
)
def test_images_are_told_by_their_signature(pillow_format: str, kind: str) -> None:
    assert detect(image_bytes(pillow_format)) == kind


def test_big_endian_tiff() -> None:
    data = image_bytes("TIFF")
    assert data.startswith(b"II*\x00")
    assert detect(b"MM\x00*" + data[4:]) == "tiff"


def test_heic() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", (16, 16), "teal")).save(out, quality=50)
    assert detect(out.getvalue()) == "heic"


def test_avif_is_not_heic() -> None:
    if not features.check("avif"):
        pytest.skip("Pillow was built without AVIF")
    data = image_bytes("AVIF")
    assert b"mif1" in data[:64]  # a HEIF brand among its compatible brands: AVIF must still win
    assert detect(data) == "avif"


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heix", "heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avis", "avif"),
        (MP4_FTYP, "video"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ", "video"),
    ],
)
def test_iso_media_files_are_told_by_their_brands(header: bytes, kind: str) -> None:
    assert detect(header + bytes(64)) == kind


def test_pdf() -> None:
    assert detect(pdf_bytes()) == "pdf"


def test_pdf_after_junk_counts_within_the_first_kilobyte() -> None:
    # PDF readers look for the header past leading junk, so a sender can hide it there.
    assert detect(b"#!/bin/sh\n" + pdf_bytes()) == "pdf"
    assert detect(bytes(1019) + b"%PDF-1.7") == "pdf"
    assert detect(bytes(1020) + b"%PDF-1.7") == "unknown"


@pytest.mark.parametrize(
    ("main_part", "kind"),
    [("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx")],
)
def test_office_packages(main_part: str, kind: str) -> None:
    data = ooxml(main_part)
    assert detect(data) == "zip"
    assert detect_zip(data) == kind
    assert kind in OOXML_KINDS


@pytest.mark.parametrize(
    ("subtype", "kind"),
    [("text", "odt"), ("spreadsheet", "ods"), ("presentation", "odp"), ("graphics", "odg")],
)
def test_opendocument_packages(subtype: str, kind: str) -> None:
    data = odf(subtype)
    assert detect(data) == "zip"
    assert detect_zip(data) == kind
    assert kind in ODF_KINDS


@pytest.mark.parametrize(
    "entries",
    [
        [("report.docx", ooxml("word/document.xml")), ("photo.jpg", image_bytes("JPEG"))],
        [("word/document.xml", b"<x/>")],  # an Office part without [Content_Types].xml
        [("[Content_Types].xml", b"<Types/>"), ("notes.txt", b"hola")],
        [("mimetype", b"application/zip")],
        [("mimetype", b"application/vnd.oasis.opendocument.text" + b" " * 100)],  # too long to be a mimetype
        [("content.xml", b"<x/>"), ("mimetype", b"application/vnd.oasis.opendocument.text")],  # not first
    ],
)
def test_other_zips_are_plain_zips(entries: list[tuple[str, bytes]]) -> None:
    data = make_zip(entries)
    assert detect(data) == "zip"
    assert detect_zip(data) == "zip"


# -- only the bytes decide --------------------------------------------------------------------------


def test_names_inside_an_archive_decide_nothing_but_its_kind() -> None:
    # An entry named and made like another format: still an Office document.
    data = make_zip([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<x/>"), ("scan.pdf", pdf_bytes())])
    assert (detect(data), detect_zip(data)) == ("zip", "docx")


def test_a_signature_elsewhere_than_at_the_start_decides_nothing() -> None:
    assert detect(b"hello " + image_bytes("PNG")) == "unknown"
    assert detect(b" " + image_bytes("JPEG")) == "unknown"
    assert detect(b"notes.docx " + ooxml("word/document.xml")) == "unknown"


# -- truncated, empty and broken input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"\xff\xd8", PNG_SIGNATURE[:7], b"RIFF\x00\x00\x00\x00WEB", b"GIF8", b"GIF89", b"PK\x03", b"II*"],
)
def test_truncated_or_empty_input_is_unknown(data: bytes) -> None:
    assert detect(data) == "unknown"


def test_plain_text_is_unknown() -> None:
    assert detect("Hola, calle Juárez 3.\n".encode()) == "unknown"


def test_an_empty_zip_is_unknown() -> None:
    # It starts with the end of its central directory: there is no entry to read or clean.
    data = make_zip([])
    assert data.startswith(b"PK\x05\x06")
    assert detect(data) == "unknown"


def test_a_truncated_header_still_counts() -> None:
    # Nothing is parsed: what matters is the signature, and stripping or reading then fails safely.
    assert detect(image_bytes("JPEG")[:3]) == "jpeg"
    assert detect(PNG_SIGNATURE) == "png"
    assert detect(MP4_FTYP[:8]) == "video"


@pytest.mark.parametrize("data", [b"PK\x03\x04" + bytes(60), ooxml("word/document.xml")[:-30]])
def test_a_broken_zip_raises_in_detect_zip(data: bytes) -> None:
    assert detect(data) == "zip"
    with pytest.raises(zipfile.BadZipFile):
        detect_zip(data)


@given(st.binary(max_size=2048))
def test_detect_never_raises(data: bytes) -> None:
    assert detect(data) in KINDS
    assert detect(data, media_last=True) in KINDS


# -- files that are two formats at once ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "other"),
    [
        (MP4_FTYP + b"%PDF-1.7\n", "pdf"),
        (b"II*\x00ftypisom" + bytes(16), "tiff"),
        (b"PK\x03\x04ftypisom" + bytes(16), "zip"),
    ],
)
def test_a_video_that_is_also_another_format(data: bytes, other: str) -> None:
    assert detect(data) == "video"
    assert detect(data, media_last=True) == other


def test_media_last_changes_nothing_for_heic_or_a_plain_video() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic%PDF-1.7\n"
    assert detect(heic, media_last=True) == "heic"
    assert detect(MP4_FTYP + bytes(64), media_last=True) == "video"
