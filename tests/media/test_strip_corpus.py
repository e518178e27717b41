"""Every place a review found identifying data left in "stripped" files (issue 11,
section 4), each with a unique marker; after stripping, no marker is left in any
byte, zip entry or PDF stream, and formats no cleaner parses are "unsupported".

The dates are markers too: 2031-07-13 04:05:06 appears nowhere but in them.
"""

from __future__ import annotations

import contextlib
import io
import struct
import zipfile

import pikepdf
import pytest

from app.crypto import Sanitised
from app.media.strip import strip_metadata
from tests.media.test_strip import DOCX_CONTENT_TYPES, DOCX_RELS, make_zip

MARKERS = (b"MARKER", "MARKER".encode("utf-16-le"), b"2031-07-13", b"20310713")
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
MC = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
DATE = "2031-07-13T04:05:06Z"
XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
RELS = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'


def _x(text: str) -> bytes:
    return (XML + text).encode()


def make_docx() -> bytes:
    document = _x(
        f'<w:document {W}><w:body><w:p w:rsidR="MARKER01" w:rsidRDefault="MARKER02">'
        f'<w:ins w:id="1" w:author="MARKER-INS-AUTHOR" w:date="{DATE}"><w:r><w:t>añadido</w:t></w:r></w:ins>'
        f'<w:del w:id="2" w:author="MARKER-DEL-AUTHOR" w:date="{DATE}">'
        "<w:r><w:delText>borrado</w:delText></w:r></w:del>"
        '<w:commentRangeStart w:id="0"/><w:r><w:t>texto</w:t></w:r><w:commentRangeEnd w:id="0"/>'
        '</w:p><w:sectPr w:rsidR="MARKER03"/></w:body></w:document>'
    )
    comments = _x(
        f'<w:comments {W}><w:comment w:id="0" w:author="MARKER-COMMENT-AUTHOR" w:date="{DATE}"'
        ' w:initials="MARKER-INITIALS"><w:p><w:r><w:t>una nota</w:t></w:r></w:p></w:comment></w:comments>'
    )
    people = _x(
        '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
        '<w15:person w15:author="MARKER-PERSON"><w15:presenceInfo w15:providerId="AD"'
        ' w15:userId="MARKER-USER@example.org"/></w15:person></w15:people>'
    )
    settings = _x(
        f'<w:settings {W} {R}><w:attachedTemplate r:id="rId1"/>'
        '<w:rsids><w:rsidRoot w:val="MARKER04"/><w:rsid w:val="MARKER05"/></w:rsids></w:settings>'
    )
    settings_rels = _x(
        f'<Relationships {RELS}><Relationship Id="rId1" TargetMode="External"'
        ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate"'
        ' Target="file:///C:\\Users\\MARKER-WINDOWS-USER\\AppData\\Roaming\\Microsoft\\Templates\\Normal.dotm"/>'
        "</Relationships>"
    )
    extensible = _x(
        '<w16cex:commentsExtensible xmlns:w16cex="http://schemas.microsoft.com/office/word/2018/wordml/cex">'
        f'<w16cex:commentExtensible w16cex:durableId="1" w16cex:dateUtc="{DATE}"/></w16cex:commentsExtensible>'
    )
    return make_zip(
        [
            ("[Content_Types].xml", DOCX_CONTENT_TYPES),
            ("_rels/.rels", DOCX_RELS),
            ("word/document.xml", document),
            ("word/comments.xml", comments),
            ("word/people.xml", people),
            ("word/settings.xml", settings),
            ("word/_rels/settings.xml.rels", settings_rels),
            ("word/commentsExtensible.xml", extensible),
            ("word/printerSettings/printerSettings1.bin", "\\\\MARKER-PRINT-SERVER\\hp".encode("utf-16-le")),
            ("customXml/item1.xml", _x("<data><owner>MARKER-CUSTOMXML</owner></data>")),
        ]
    )


def make_xlsx() -> bytes:
    workbook = _x(
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        f' {MC}><mc:AlternateContent><mc:Choice Requires="x15">'
        '<x15ac:absPath xmlns:x15ac="http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac"'
        ' url="C:\\Users\\MARKER-ONEDRIVE\\OneDrive\\Documentos\\"/></mc:Choice></mc:AlternateContent>'
        "<sheets/></workbook>"
    )
    comments = _x(
        '<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        "<authors><author>MARKER-XL-AUTHOR</author></authors><commentList/></comments>"
    )
    link_rels = _x(
        f'<Relationships {RELS}><Relationship Id="rId1" TargetMode="External"'
        ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/externalLinkPath"'
        ' Target="file:///C:/Users/MARKER-LINKED/cuentas.xlsx"/></Relationships>'
    )
    persons = _x(
        '<personList xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments">'
        '<person displayName="MARKER-XL-PERSON" id="{1}" userId="MARKER-XL-USER" providerId="AD"/></personList>'
    )
    threaded = _x(
        '<ThreadedComments xmlns="http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments">'
        f'<threadedComment ref="A1" dT="{DATE}" personId="{{1}}" id="{{2}}"><text>ok</text></threadedComment>'
        "</ThreadedComments>"
    )
    return make_zip(
        [
            ("[Content_Types].xml", DOCX_CONTENT_TYPES),
            ("xl/workbook.xml", workbook),
            ("xl/comments1.xml", comments),
            ("xl/externalLinks/externalLink1.xml", _x("<externalLink/>")),
            ("xl/externalLinks/_rels/externalLink1.xml.rels", link_rels),
            ("xl/persons/person.xml", persons),
            ("xl/threadedComments/threadedComment1.xml", threaded),
            ("xl/printerSettings/printerSettings1.bin", b"MARKER-XL-PRINTER"),
        ]
    )


def make_pptx() -> bytes:
    authors = _x(
        '<p:cmAuthorLst xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">'
        '<p:cmAuthor id="0" name="MARKER-PPT-AUTHOR" initials="MARKER-PI" lastIdx="1" clrIdx="0"/></p:cmAuthorLst>'
    )
    comment = _x(
        '<p:cmLst xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main">'
        f'<p:cm authorId="0" dt="{DATE}" idx="1"><p:pos x="10" y="10"/><p:text>ok</p:text></p:cm></p:cmLst>'
    )
    return make_zip(
        [
            ("[Content_Types].xml", DOCX_CONTENT_TYPES),
            ("ppt/presentation.xml", _x("<presentation/>")),
            ("ppt/commentAuthors.xml", authors),
            ("ppt/comments/comment1.xml", comment),
        ]
    )


ODF = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
    ' xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0"'
)


def make_odt() -> bytes:
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {ODF} office:version="1.3">'
        "<office:body><office:text><text:tracked-changes><text:changed-region text:id="
        '"c1"><text:insertion><office:change-info><dc:creator>MARKER-ODT-CHANGE</dc:creator>'
        "<dc:date>2031-07-13T04:05:06</dc:date></office:change-info></text:insertion></text:changed-region>"
        "</text:tracked-changes><text:p>Denuncia<office:annotation><dc:creator>MARKER-ODT-NOTE</dc:creator>"
        "<dc:date>2031-07-13T04:05:06</dc:date><meta:creator-initials>MARKER-OI</meta:creator-initials>"
        "<meta:date-string>13/07/2031</meta:date-string><text:p>nota</text:p></office:annotation></text:p>"
        "</office:text></office:body></office:document-content>"
    ).encode()
    settings = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-settings {ODF}><office:settings>'
        '<config:config-item-set config:name="ooo:configuration-settings">'
        '<config:config-item config:name="PrinterName" config:type="string">MARKER-ODT-PRINTER</config:config-item>'
        '<config:config-item config:name="PrinterSetup" config:type="base64Binary">MARKER-SETUP</config:config-item>'
        "</config:config-item-set></office:settings></office:document-settings>"
    ).encode()
    return make_zip(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content),
            ("styles.xml", content.replace(b"document-content", b"document-styles")),
            ("settings.xml", settings),
        ],
        stored=frozenset({"mimetype"}),
    )


def _jp2_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def make_jp2() -> bytes:
    header = _jp2_box(b"ihdr", struct.pack(">IIHBBBB", 8, 8, 3, 7, 7, 0, 0)) + _jp2_box(
        b"colr", b"\x01\x00\x00\x00\x00\x00\x10"
    )
    return (
        _jp2_box(b"jP  ", b"\r\n\x87\n")
        + _jp2_box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 ")
        + _jp2_box(b"jp2h", header)
        + _jp2_box(b"xml ", b"<x:xmpmeta><dc:creator>MARKER-JPX-XMP</dc:creator></x:xmpmeta>")
        + _jp2_box(b"uuid", b"\xb1\x4b\xf8\xbd\x08\x3d\x4b\x43\xa5\xae\x8c\xd7\xd5\xa6\xce\x03MARKER-GEOJP2")
        + _jp2_box(b"jp2c", b"\xff\x4f\xff\x51" + bytes(40) + b"\xff\xd9")
    )


def make_pdf() -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 200))
    figure = pdf.make_stream(b"0 0 10 10 re f")
    figure.Type, figure.Subtype, figure.BBox = pikepdf.Name.XObject, pikepdf.Name.Form, [0, 0, 10, 10]
    figure["/PTEX.FileName"] = pikepdf.String("C:/Users/MARKER-PTEX/figura.pdf")
    figure["/PTEX.PageNumber"] = 1
    figure["/PTEX.InfoDict"] = pikepdf.Dictionary(Author="MARKER-PTEX-AUTHOR", CreationDate="D:20310713040506")
    jpx = pikepdf.Stream(pdf, make_jp2())
    jpx.Type, jpx.Subtype, jpx.Filter = pikepdf.Name.XObject, pikepdf.Name.Image, pikepdf.Name.JPXDecode
    jpx.Width, jpx.Height = 8, 8
    attached = pikepdf.Stream(pdf, b"attachment content")
    attached.Type = pikepdf.Name.EmbeddedFile
    attached.Params = pikepdf.Dictionary(CreationDate="D:20310713040506+05'00'", ModDate="D:20310713040506+05'00'")
    spec = pikepdf.Dictionary(
        Type=pikepdf.Name.Filespec,
        F=pikepdf.String("C:\\Users\\MARKER-ATTACHER\\Desktop\\anexo.txt"),
        UF=pikepdf.String("C:\\Users\\MARKER-ATTACHER\\Desktop\\anexo.txt"),
        EF=pikepdf.Dictionary(F=attached),
    )
    pdf.Root.Names = pikepdf.Dictionary(EmbeddedFiles=pikepdf.Dictionary(Names=[pikepdf.String("anexo.txt"), spec]))
    page = pdf.pages[0].obj
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fx0=figure, Im0=jpx))
    page.Contents = pdf.make_stream(b"q /Fx0 Do Q q 8 0 0 8 50 50 cm /Im0 Do Q")
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def every_byte(data: bytes) -> bytes:
    """The file, every zip entry inflated and every PDF stream decoded where it can be."""
    parts = [data]
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts += [archive.read(info) for info in archive.infolist()]
    if data.startswith(b"%PDF"):
        with pikepdf.open(io.BytesIO(data)) as pdf:
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Stream):
                    parts.append(obj.read_raw_bytes())
                    with contextlib.suppress(pikepdf.PdfError):  # image filters: raw bytes are checked
                        parts.append(obj.read_bytes())
                if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
                    parts.append(repr(obj).encode())
    return b"\n".join(parts)


@pytest.mark.parametrize("make", [make_docx, make_xlsx, make_pptx, make_odt, make_pdf])
def test_no_marker_survives_stripping(make: object) -> None:
    assert callable(make)
    original: bytes = make()
    assert all(marker in every_byte(original) for marker in MARKERS[:1])  # the corpus has its markers
    result = strip_metadata(original)
    assert result.status is Sanitised.STRIPPED
    cleaned = every_byte(result.data)
    left = [marker for marker in MARKERS if marker in cleaned]
    found = cleaned.find(left[0]) if left else -1
    assert left == [], cleaned[max(0, found - 80) : found + 80]


def test_stripped_office_parts_stay_well_formed_and_keep_their_text() -> None:
    from xml.etree import ElementTree

    for make in (make_docx, make_xlsx, make_pptx, make_odt):
        with zipfile.ZipFile(io.BytesIO(strip_metadata(make()).data)) as archive:
            for info in archive.infolist():
                if info.filename.endswith((".xml", ".rels")):
                    ElementTree.fromstring(archive.read(info))
    with zipfile.ZipFile(io.BytesIO(strip_metadata(make_docx()).data)) as docx:
        document = docx.read("word/document.xml").decode()
    assert "añadido" in document
    assert "borrado" in document


def test_an_attachment_keeps_its_name_and_content_but_not_its_folder() -> None:
    with pikepdf.open(io.BytesIO(strip_metadata(make_pdf()).data)) as pdf:
        (attachment,) = pdf.attachments.values()
        assert str(attachment.filename) == "anexo.txt"
        assert attachment.get_file().read_bytes() == b"attachment content"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"{\\rtf1\\ansi{\\info{\\author MARKER-RTF}}Denuncia}", "rtf"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:sodipodi="x"'
            b' sodipodi:docname="MARKER.svg"><rect/></svg>',
            "svg",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" inkscape:export-filename="/home/MARKER/a.png"/>', "svg"),
        (
            b"Received: from [10.1.2.3] by mx.example.org\r\nFrom: MARKER <m@example.org>\r\n"
            b"Subject: hola\r\n\r\ncuerpo\r\n",
            "email",
        ),
        (b"<!DOCTYPE html><html><head><meta name=author content=MARKER></head></html>", "html"),
    ],
    ids=["rtf", "svg with declaration", "svg", "email", "html"],
)
def test_formats_no_cleaner_parses_are_unsupported_not_clean(data: bytes, kind: str) -> None:
    result = strip_metadata(data)
    assert (result.status, result.kind, result.data) == (Sanitised.UNSUPPORTED, kind, data)


@pytest.mark.parametrize(
    "text",
    [b"Just a plain note.\nNothing else.\n", b"Nota: me lo dijo from: mi jefe\n", "Denuncia anónima\n".encode()],
)
def test_plain_text_is_still_none_found(text: bytes) -> None:
    assert strip_metadata(text).status is Sanitised.NONE_FOUND
