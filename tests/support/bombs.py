"""Hostile files, generated small: each inflates to far more than it weighs.

Made by streaming zeros through zlib, so building a 1 GiB bomb takes a second
and never holds the gigabyte; the HEIC one is encoded by libheif.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

GIB = 1 << 30
MIB = 1 << 20
HEIC_BOMB_ARTIST = b"artist-in-the-heic-bomb"


def deflated_zeros(size: int, *, filler: bytes = b"\0") -> bytes:
    """zlib data that inflates to ``size`` copies of ``filler``."""
    compressor = zlib.compressobj(9)
    chunk = filler * (MIB // len(filler))
    out = bytearray()
    for _ in range(size // len(chunk)):
        out += compressor.compress(chunk)
    return bytes(out + compressor.flush())


def _pdf(objects: list[bytes], *, extra_trailer: bytes = b"") -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, extra_trailer, xref)
    return bytes(out)


def _stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< %s /Length %d >>\nstream\n" % (dictionary, len(data)) + data + b"\nendstream"


def double_filter_pdf(size: int = GIB) -> bytes:
    """One stream under /Filter [/FlateDecode /FlateDecode]: a few KB that decode to ``size`` bytes."""
    twice = zlib.compress(deflated_zeros(size), 9)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] /Contents 4 0 R >>",
            _stream(b"/Filter [/FlateDecode /FlateDecode]", twice),
        ],
        extra_trailer=b"/Info << /Author (bomb) >> ",
    )


def object_stream_pdf(size: int = GIB) -> bytes:
    """A PDF of about 1 MB whose object stream inflates to ``size`` bytes.

    Object 5 (the document information) lives only inside that stream, and a
    cross-reference stream says so: to read it, a parser must inflate it all.
    """
    header = b"5 0 "
    compressor = zlib.compressobj(9)
    packed = bytearray(compressor.compress(header + b"<< /Author (x) >>"))
    chunk = b" " * MIB
    for _ in range(size // MIB):
        packed += compressor.compress(chunk)
    packed += compressor.flush()
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 100 100] >>",
        4: _stream(b"/Type /ObjStm /N 1 /First %d /Filter /FlateDecode" % len(header), bytes(packed)),
    }
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for number, body in objects.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    offsets[6] = len(out)
    # Cross-reference stream, entries of 1 + 4 + 2 bytes: type, field 2, field 3.
    rows = [struct.pack(">BIH", 0, 0, 65535)]
    rows += [struct.pack(">BIH", 1, offsets[n], 0) for n in (1, 2, 3, 4)]
    rows += [struct.pack(">BIH", 2, 4, 0), struct.pack(">BIH", 1, offsets[6], 0)]
    table = b"".join(rows)
    out += b"6 0 obj\n" + _stream(b"/Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Info 5 0 R", table)
    out += b"\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[6]
    return bytes(out)


def zip_entry_docx(size: int = 255 * MIB) -> bytes:
    """A .docx whose document part inflates to ``size`` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as docx:
        docx.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        with docx.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body>')
            chunk = b" " * MIB
            for _ in range(size // MIB):
                part.write(chunk)
            part.write(b"</w:body></w:document>")
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = 30_000) -> bytes:
    """A grey PNG of side × side pixels (900 MP at the default): one byte per pixel once decoded."""
    rows = deflated_zeros((side + 1) * side // MIB * MIB)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows) + _png_chunk(b"IEND", b"")


def webp_bomb(side: int = 16_383) -> bytes:
    """A lossless WebP that declares the largest canvas (16383 × 16383, 1 GiB as RGBA)."""
    # VP8L: signature 0x2f, then 14-bit width-1, 14-bit height-1, alpha bit, 3-bit version.
    bits = (side - 1) | ((side - 1) << 14) | (1 << 28)
    vp8l = b"\x2f" + struct.pack("<I", bits) + deflated_zeros(MIB)[:4096]
    chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l + (b"\0" if len(vp8l) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def heic_bomb() -> bytes:
    """A real grey HEIC of side × side pixels: 67 MP (192 MiB as RGB) in about 15 KB.

    HEVC at this size is encoded by pillow-heif's x265, which takes seconds, so
    it is made once per process. Unlike the PNG and WebP bombs it is a valid
    image, with an EXIF artist of HEIC_BOMB_ARTIST: a cleaner that edits its
    boxes without decoding it can clean it.
    """
    return _heic(8192)


@functools.cache
def _heic(side: int) -> bytes:
    import pillow_heif
    from PIL import Image

    exif = Image.Exif()
    exif[0x013B] = HEIC_BOMB_ARTIST.decode()
    out = io.BytesIO()
    image = pillow_heif.from_pillow(Image.new("L", (side, side), 128))
    image.save(out, quality=0, format="HEIF", exif=exif.tobytes())
    return out.getvalue()
