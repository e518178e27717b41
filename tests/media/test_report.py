"""Metadata reports and previews, on real files made here in memory."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, NoReturn

import pikepdf
import pytest
from pikepdf import Name
from PIL import ExifTags, Image, ImageFile, PngImagePlugin

from app.media.findings import MetadataReport
from app.media.report import MAX_VALUE_CHARS, metadata_report, safe_preview
from tests.support.diskwatch import recorded_writes, refuse_temporary_files
from tests.support.filesamples import make_zip

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Photo Editor 5">'
    b'<dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Seq><rdf:li>Ana Ruiz</rdf:li>'
    b"<rdf:li>Bo Chen</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
)
EVIL_DTDS = [
    b'<!DOCTYPE r [<!ENTITY secret "ENTITY-TEXT">]>',
    b'<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/hostname">]>',
    b'<!DOCTYPE r [<!ENTITY a "ENTITY-TEXT"><!ENTITY secret "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
]


def report(data: bytes) -> MetadataReport:
    # A misleading name and type: only magic bytes may decide the format.
    return metadata_report(data, "text/plain", "notas.txt")


def fields(result: MetadataReport) -> dict[str, str]:
    return dict(result.fields)


# -- fixture generators --------------------------------------------------------------------------------


def picture(size: tuple[int, int] = (320, 240)) -> Image.Image:
    # Noise, so the JPEG scan data is long enough to cut in the middle.
    rng = random.Random(7)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    return image


def camera_exif(*, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Model] = "EOS 5D"
    exif[ExifTags.Base.Software] = "Firmware 1.2"
    exif[ExifTags.Base.Orientation] = orientation
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2024:05:01 10:11:12"
    details[ExifTags.Base.LensModel] = "EF 50mm"
    details[ExifTags.Base.BodySerialNumber] = "SN-0042"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    # 19°25'57.36" N, 99°7'59.52" W: 19.4326, -99.1332 (Mexico City's Zócalo).
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (19.0, 25.0, 57.36)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (99.0, 7.0, 59.52)
    gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00"
    gps[ExifTags.GPS.GPSAltitude] = 2240.5
    return exif


def make_jpeg(image: Image.Image | None = None, *, orientation: int = 1, xmp: bytes = XMP) -> bytes:
    out = io.BytesIO()
    (image or picture()).save(
        out, "JPEG", exif=camera_exif(orientation=orientation), xmp=xmp, comment=b"shot for the story"
    )
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(*, extra_text: list[tuple[str, str]] | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ana Ruiz")
    info.add_text("Comment", "compressed note", zip=True)
    info.add_itxt("Description", "descripción", lang="es", tkey="Beschreibung", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    for key, value in extra_text or []:
        info.add_itxt(key, value)
    out = io.BytesIO()
    picture((32, 24)).save(out, "PNG", pnginfo=info, exif=camera_exif())
    data = out.getvalue()
    # A text chunk after the image data, where Pillow does not look without decoding the pixels.
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + png_chunk(b"tEXt", b"Software\x00Late Chunk 2.0") + data[iend:]


def make_pdf(*, risky: bool = False, encryption: pikepdf.Encryption | None = None) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.add_blank_page()
    pdf.docinfo[Name.Title] = "Informe interno"
    pdf.docinfo[Name.Author] = "Ana Ruiz"
    pdf.docinfo[Name.Creator] = "Writer 7.6"
    pdf.docinfo[Name.Producer] = "LibreOffice 7.6"
    pdf.docinfo[Name.CreationDate] = "D:20240501101112+02'00'"
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["dc:creator"] = ["Ana Ruiz (XMP)"]
        meta["xmp:CreatorTool"] = "Writer XMP"
    if risky:
        pdf.Root.OpenAction = pikepdf.Dictionary(S=Name.JavaScript, JS=pikepdf.String("app.alert(1)"))
        pdf.attachments["payload.txt"] = pikepdf.AttachedFileSpec(pdf, b"hidden")
    out = io.BytesIO()
    pdf.save(out, encryption=encryption or False)
    return out.getvalue()


def core_xml(creator: bytes = b"Ana Ruiz", *, dtd: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + dtd + b"<cp:coreProperties"
        b' xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
        b' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
        b"<dc:title>Plan</dc:title><dc:creator>" + creator + b"</dc:creator>"
        b"<cp:lastModifiedBy>Bo Chen</cp:lastModifiedBy><cp:revision>7</cp:revision>"
        b"<dcterms:created>2024-05-01T10:11:12Z</dcterms:created>"
        b"<dcterms:modified>2024-05-02T08:00:00Z</dcterms:modified></cp:coreProperties>"
    )


APP_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Properties'
    b' xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    b"<Template>Normal.dotm</Template><Application>Microsoft Office Word</Application>"
    b"<Company>Ministerio de Ejemplo</Company></Properties>"
)


def make_docx(core: bytes | None = None) -> bytes:
    return make_zip(
        [
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w:document/>"),
            ("docProps/core.xml", core if core is not None else core_xml()),
            ("docProps/app.xml", APP_XML),
        ]
    )


ODT_META = (
    b'<?xml version="1.0" encoding="UTF-8"?><office:document-meta'
    b' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    b' xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
    b' xmlns:dc="http://purl.org/dc/elements/1.1/" office:version="1.3"><office:meta>'
    b"<meta:initial-creator>Ana Ruiz</meta:initial-creator><dc:creator>Bo Chen</dc:creator>"
    b"<meta:creation-date>2024-05-01T10:11:12</meta:creation-date><dc:date>2024-05-02T08:00:00</dc:date>"
    b"<meta:generator>LibreOffice/7.6.4.1$Linux_X86_64</meta:generator></office:meta></office:document-meta>"
)


def make_odt() -> bytes:
    return make_zip(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"<office:document-content/>"),
            ("meta.xml", ODT_META),
        ]
    )


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring the given size, then the end: no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


def near(pixel: object, colour: tuple[int, int, int]) -> bool:
    """JPEG shifts colours a little, so compare with a tolerance."""
    return isinstance(pixel, tuple) and all(abs(a - b) < 60 for a, b in zip(pixel, colour, strict=True))


def png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


# -- metadata_report: images ---------------------------------------------------------------------


def test_jpeg_report_has_camera_gps_and_xmp() -> None:
    result = report(make_jpeg(orientation=6))
    found = fields(result)
    assert result.kind == "JPEG image"
    assert found["Dimensions"] == "320 × 240 pixels"
    assert found["Camera make"] == "Canon"
    assert found["Camera model"] == "EOS 5D"
    assert found["Software"] == "Firmware 1.2"
    assert found["Orientation"].startswith("6 ")
    assert found["Date taken"] == "2024:05:01 10:11:12"
    assert found["Lens model"] == "EF 50mm"
    assert found["Camera serial number"] == "SN-0042"
    assert float(found["GPS latitude"]) == 19.4326
    assert float(found["GPS longitude"]) == -99.1332
    assert found["GPS altitude"] == "2240.5 m"
    assert found["XMP metadata"] == "present"
    assert found["XMP creator tool"] == "Photo Editor 5"
    assert found["XMP author"] == "Ana Ruiz; Bo Chen"
    assert found["Comment"] == "shot for the story"
    assert any("GPS" in warning for warning in result.warnings)


def test_southern_and_eastern_coordinates_are_signed() -> None:
    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (33.0, 52.0, 4.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (151.0, 12.0, 36.0)
    out = io.BytesIO()
    picture((16, 16)).save(out, "JPEG", exif=exif)
    found = fields(report(out.getvalue()))
    assert float(found["GPS latitude"]) == -33.867778
    assert float(found["GPS longitude"]) == 151.21


def test_image_without_metadata_has_only_dimensions_and_no_warnings() -> None:
    out = io.BytesIO()
    picture((16, 8)).save(out, "JPEG")
    result = report(out.getvalue())
    assert result.fields == [("Dimensions", "16 × 8 pixels")]
    assert result.warnings == []


def test_png_report_has_text_chunks_exif_and_xmp() -> None:
    result = report(make_png())
    found = fields(result)
    assert result.kind == "PNG image"
    assert found["PNG text: Author"] == "Ana Ruiz"
    assert found["PNG text: Comment"] == "compressed note"
    assert found["PNG text: Description"] == "descripción"
    assert found["PNG text: Software"] == "Late Chunk 2.0"
    assert found["Camera make"] == "Canon"
    assert float(found["GPS longitude"]) == -99.1332
    assert found["XMP creator tool"] == "Photo Editor 5"
    assert "PNG text: XML:com.adobe.xmp" not in found
    assert not any("cut short" in warning for warning in result.warnings)


def test_values_lose_control_characters_and_are_truncated() -> None:
    sneaky = "Ana\x1b[31m\u202eziuR\u202c\x07 \n Ruiz"
    result = report(make_png(extra_text=[("Note", sneaky), ("Long", "x" * 5000)]))
    found = fields(result)
    assert found["PNG text: Note"] == "Ana[31mziuR Ruiz"
    assert len(found["PNG text: Long"]) == MAX_VALUE_CHARS
    assert all(len(value) <= MAX_VALUE_CHARS for _, value in result.fields)


@pytest.mark.parametrize("pillow_format", ["WEBP", "TIFF"])
def test_other_image_formats_are_read(pillow_format: str) -> None:
    out = io.BytesIO()
    picture((40, 30)).save(out, pillow_format, exif=camera_exif())
    result = report(out.getvalue())
    assert result.kind == f"{'WebP' if pillow_format == 'WEBP' else 'TIFF'} image"
    assert fields(result)["Camera make"] == "Canon"
    assert fields(result)["Dimensions"] == "40 × 30 pixels"


def test_heic_report_has_exif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(picture((64, 48))).save(out, exif=camera_exif().tobytes(), xmp=XMP, quality=90)
    result = report(out.getvalue())
    assert result.kind == "HEIC image"
    assert fields(result)["Camera model"] == "EOS 5D"
    assert float(fields(result)["GPS latitude"]) == 19.4326
    assert fields(result)["XMP author"] == "Ana Ruiz; Bo Chen"


def test_truncated_jpeg_warns_and_keeps_what_it_read() -> None:
    data = make_jpeg()
    result = report(data[: len(data) * 2 // 3])
    assert result.kind == "JPEG image"
    assert any("cut short" in warning for warning in result.warnings)
    assert fields(result)["Camera make"] == "Canon"
    assert not any("cut short" in warning for warning in report(data).warnings)


def test_jpeg_cut_inside_its_headers_warns() -> None:
    result = report(make_jpeg()[:300])
    assert result.kind == "JPEG image"
    assert any("could not be read" in warning for warning in result.warnings)


def test_xmp_with_a_doctype_is_refused_but_exif_still_shown() -> None:
    evil = EVIL_DTDS[0] + b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&secret;</x:xmpmeta>'
    result = report(make_jpeg(xmp=evil))
    assert "The XMP metadata could not be read." in result.warnings
    assert fields(result)["Camera make"] == "Canon"
    assert not any("ENTITY-TEXT" in value for _, value in result.fields)


# -- metadata_report: PDF ------------------------------------------------------------------------


def test_pdf_report_has_docinfo_xmp_and_pages() -> None:
    result = report(make_pdf())
    found = fields(result)
    assert result.kind == "PDF document"
    assert found["Pages"] == "2"
    assert found["Encrypted"] == "no"
    assert found["Title"] == "Informe interno"
    assert found["Author"] == "Ana Ruiz"
    assert found["Creator (application)"] == "Writer 7.6"
    assert found["Producer"] == "LibreOffice 7.6"
    assert found["Created"] == "D:20240501101112+02'00'"
    assert found["XMP author"] == "Ana Ruiz (XMP)"
    assert found["XMP creator tool"] == "Writer XMP"
    assert result.warnings == []


def test_pdf_with_javascript_and_attachments_warns() -> None:
    warnings = " ".join(report(make_pdf(risky=True)).warnings)
    assert "JavaScript" in warnings
    assert "embedded" in warnings


def test_password_protected_pdf_warns_without_raising() -> None:
    result = report(make_pdf(encryption=pikepdf.Encryption(user="secret", owner="owner")))
    assert result.kind == "PDF document"
    assert fields(result)["Encrypted"] == "yes, with a password"
    assert any("password" in warning for warning in result.warnings)


def test_pdf_with_only_an_owner_password_is_read_and_marked_encrypted() -> None:
    result = report(make_pdf(encryption=pikepdf.Encryption(user="", owner="owner")))
    assert fields(result)["Encrypted"] == "yes"
    assert fields(result)["Author"] == "Ana Ruiz"


def test_the_claimed_type_is_ignored() -> None:
    assert metadata_report(make_pdf(), "image/jpeg", "photo.jpg").kind == "PDF document"
    assert metadata_report(make_jpeg(), "application/pdf", "report.pdf").kind == "JPEG image"


def test_broken_pdf_warns() -> None:
    result = report(b"%PDF-1.7\n" + b"\x00garbage" * 20)
    assert result.kind == "PDF document"
    assert any("could not be read" in warning for warning in result.warnings)


# -- metadata_report: office documents -----------------------------------------------------------


def test_docx_report_has_core_and_app_properties() -> None:
    result = report(make_docx())
    found = fields(result)
    assert result.kind == "Word document"
    assert found["Title"] == "Plan"
    assert found["Author"] == "Ana Ruiz"
    assert found["Last modified by"] == "Bo Chen"
    assert found["Created"] == "2024-05-01T10:11:12Z"
    assert found["Modified"] == "2024-05-02T08:00:00Z"
    assert found["Revision"] == "7"
    assert found["Application"] == "Microsoft Office Word"
    assert found["Company"] == "Ministerio de Ejemplo"
    assert found["Template"] == "Normal.dotm"
    assert result.warnings == []


def test_odt_report_has_meta() -> None:
    result = report(make_odt())
    found = fields(result)
    assert result.kind == "OpenDocument text"
    assert found["Author"] == "Ana Ruiz"
    assert found["Last modified by"] == "Bo Chen"
    assert found["Created"] == "2024-05-01T10:11:12"
    assert found["Modified"] == "2024-05-02T08:00:00"
    assert found["Application"] == "LibreOffice/7.6.4.1$Linux_X86_64"


def test_zip_bomb_member_is_refused_before_inflating_and_other_parts_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = b"<a>" + b" " * (16 * 1024 * 1024) + b"</a>"  # 16 MiB that deflates to about 16 KiB
    data = make_docx(core=bomb)
    assert len(data) < 100_000
    real_open = zipfile.ZipFile.open

    def open_unless_core(archive: zipfile.ZipFile, name: str | zipfile.ZipInfo, *args: Any, **kwargs: Any) -> IO[bytes]:
        # The declared size alone must refuse the member: it is never opened, let alone inflated.
        assert getattr(name, "filename", name) != "docProps/core.xml"
        return real_open(archive, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", open_unless_core)
    result = report(data)
    assert result.kind == "Word document"
    assert "docProps/core.xml could not be read: it is too large once unzipped." in result.warnings
    assert fields(result)["Company"] == "Ministerio de Ejemplo"


def test_zip_member_lying_about_its_size_is_refused() -> None:
    data = bytearray(make_docx(core=core_xml() + b" " * 4 * 1024 * 1024))
    # Declare 100 bytes in the central directory, where zipfile takes sizes from.
    entry = data.rindex(b"docProps/core.xml") - 46  # the last copy of the name is in the central directory
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 24 : entry + 28] = struct.pack("<I", 100)
    result = report(bytes(data))
    assert "docProps/core.xml could not be read: it is malformed." in result.warnings
    assert "Author" not in fields(result)


@pytest.mark.parametrize("dtd", EVIL_DTDS)
def test_xml_with_a_doctype_is_refused(dtd: bytes) -> None:
    result = report(make_docx(core=core_xml(b"&secret;", dtd=dtd)))
    assert any("DOCTYPE" in warning and "core.xml" in warning for warning in result.warnings)
    assert not any("ENTITY-TEXT" in value or "Ana" in value for _, value in result.fields)
    assert fields(result)["Application"] == "Microsoft Office Word"


@pytest.mark.parametrize(
    "data",
    [b"hello, plain text", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"", make_zip([("a.txt", b"hi")])],
)
def test_unknown_formats_get_an_empty_report(data: bytes) -> None:
    assert report(data) == MetadataReport("unknown", [], [])


# -- safe_preview --------------------------------------------------------------------------------


def test_preview_is_a_bare_png() -> None:
    preview = safe_preview(make_jpeg())
    assert preview is not None
    assert preview.startswith(PNG_SIGNATURE)
    assert set(png_chunk_types(preview)) == {b"IHDR", b"IDAT", b"IEND"}
    with Image.open(io.BytesIO(preview)) as image:
        assert image.format == "PNG"
        assert image.mode == "RGB"
        assert image.info == {}
        assert len(image.getexif()) == 0
        assert image.size == (320, 240)


def test_preview_of_a_png_with_text_and_exif_has_none() -> None:
    preview = safe_preview(make_png())
    assert preview is not None
    assert set(png_chunk_types(preview)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"Ana" not in preview


def test_preview_fits_in_1024_pixels() -> None:
    out = io.BytesIO()
    Image.new("RGB", (3000, 1500), "navy").save(out, "PNG")
    preview = safe_preview(out.getvalue())
    assert preview is not None
    with Image.open(io.BytesIO(preview)) as image:
        assert image.size == (1024, 512)


def test_preview_applies_exif_orientation() -> None:
    # Stored 20 wide and 10 tall, left half red; orientation 6 means "turn 90° clockwise to view",
    # which puts the red half on top of a 10 × 20 picture.
    stored = Image.new("RGB", (20, 10), "blue")
    stored.paste((255, 0, 0), (0, 0, 10, 10))
    preview = safe_preview(make_jpeg(stored, orientation=6))
    assert preview is not None
    with Image.open(io.BytesIO(preview)) as image:
        assert image.size == (10, 20)
        assert near(image.getpixel((5, 3)), (255, 0, 0))
        assert near(image.getpixel((5, 16)), (0, 0, 255))


def test_preview_of_a_transparent_gif_is_its_first_frame_on_white() -> None:
    frames = [Image.new("P", (8, 8), 0), Image.new("P", (8, 8), 1)]
    for frame in frames:
        frame.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    frames[0].putpixel((0, 0), 2)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], transparency=2, disposal=2)
    preview = safe_preview(out.getvalue())
    assert preview is not None
    with Image.open(io.BytesIO(preview)) as image:
        assert image.mode == "RGB"
        assert image.getpixel((0, 0)) == (255, 255, 255)
        assert image.getpixel((4, 4)) == (255, 0, 0)


def test_heic_preview() -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(picture((64, 48))).save(out, exif=camera_exif().tobytes(), quality=90)
    preview = safe_preview(out.getvalue())
    assert preview is not None
    with Image.open(io.BytesIO(preview)) as image:
        assert image.size == (64, 48)
        assert image.info == {}


@pytest.mark.parametrize(
    "data",
    [
        make_pdf(),
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        make_docx(),
        b"just text",
        b"",
        b"\xff\xd8\xff\xe0 not really a jpeg",
    ],
)
def test_non_images_get_no_preview(data: bytes) -> None:
    assert safe_preview(data) is None


def test_truncated_jpeg_gets_no_preview() -> None:
    data = make_jpeg()
    assert safe_preview(data[: len(data) * 2 // 3]) is None


def fail_on_decode(self: ImageFile.ImageFile) -> NoReturn:
    raise AssertionError("pixels were decoded")


@pytest.mark.parametrize(
    "size",
    [
        (100_000, 100_000),  # far past Pillow's own bomb limit: refused by Image.open
        (8_000, 8_000),  # 64 MP: under Pillow's limit, over ours
        (50_001, 1_000),
    ],
)
def test_decompression_bombs_get_no_preview_and_are_not_decoded(
    size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_on_decode)
    assert safe_preview(png_header(*size)) is None
    with pytest.raises(AssertionError, match="decoded"):
        safe_preview(png_header(10, 10))  # the trap does catch a decode


def test_huge_image_report_is_a_warning() -> None:
    result = report(png_header(100_000, 100_000))
    assert result.kind == "PNG image"
    assert any("could not be read" in warning for warning in result.warnings)


# -- robustness ----------------------------------------------------------------------------------

SAMPLES = {
    "jpeg": make_jpeg(picture((64, 48))),
    "png": make_png(),
    "pdf": make_pdf(risky=True),
    "docx": make_docx(),
    "odt": make_odt(),
}


# Pillow warns (rather than raises) about some damaged EXIF; pytest would make that an error,
# while in production it is a log line. The point here is that nothing *raises*.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL")
@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("seed", range(25))
def test_damaged_files_never_raise(name: str, seed: int) -> None:
    rng = random.Random(seed)
    data = bytearray(SAMPLES[name])
    for _ in range(rng.randrange(1, 6)):
        data[rng.randrange(8, len(data))] = rng.randrange(256)
    damaged = bytes(data[: rng.randrange(len(data) // 2, len(data) + 1)])
    assert isinstance(report(damaged), MetadataReport)
    preview = safe_preview(damaged)
    assert preview is None or preview.startswith(PNG_SIGNATURE)


def test_without_pillow_heif_heic_is_reported_but_not_previewed(monkeypatch: pytest.MonkeyPatch) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is not installed")
    out = io.BytesIO()
    pillow_heif.from_pillow(picture((16, 16))).save(out, quality=90)
    monkeypatch.setattr("app.media.report._HAVE_HEIF", False)
    result = report(out.getvalue())
    assert result.kind == "HEIC image"
    assert any("HEIC support" in warning for warning in result.warnings)
    assert safe_preview(out.getvalue()) is None


# -- nothing reaches the disk ----------------------------------------------------------------------


def test_nothing_touches_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [*SAMPLES.values(), make_pdf(encryption=pikepdf.Encryption(user="x", owner="y"))]
    for data in samples:  # load every plugin first, so no bytecode is written while watching
        report(data)
        safe_preview(data)
    refuse_temporary_files(monkeypatch, tmp_path)
    with recorded_writes() as writes:
        previews = [safe_preview(data) for data in samples]
        reports = [report(data) for data in samples]
    assert writes == []
    assert list(tmp_path.iterdir()) == []
    assert previews[0] is not None  # the JPEG
    assert previews[1] is not None  # the PNG
    assert all(r.fields for r in reports)
