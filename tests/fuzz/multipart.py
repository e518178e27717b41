"""Hypothesis strategies for hostile multipart bodies, built as raw bytes.

Nothing here goes through an HTTP library's form encoder, so names, file names
and headers reach the server exactly as drawn: path traversal, NUL, direction
overrides, CRLF injection, 10,000-character names, thousands of tiny parts,
lying content types, missing final boundaries and bodies cut at any byte.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import strategies as st

HOSTILE_NAMES = [
    b"../../../../etc/passwd",
    b"..\\..\\windows\\system32\\config\\sam",
    b"/absolute/path.txt",
    b"C:\\Users\\ana\\secret.docx",
    b"a\x00b.txt",
    b"\x00",
    "\u202etxt.exe".encode(),
    "\u202egnp.pdf\u202c".encode(),
    "ñandú «borrador».txt".encode(),
    "中文文件名.pdf".encode(),
    "🗂️📎.zip".encode(),
    b"\xed\xa0\x80.bin",  # a UTF-8-encoded surrogate
    b"\xff\xfe\xfd",
    b"x" * 10_000,
    "é".encode() * 5_000,
    b'a"\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>',
    b"evil\r\nX-Injected: 1",
    b'quote"inside',
    b"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"\x1b[31mred\x1b[0m",
    b"tab\there\x7f",
    b".",
    b"..",
    b" ",
    b"",
    b"CON",
    b"nul.txt",
]
FIELD_NAMES = [b"message", b"files", b"website", b"strip_metadata", b"csrf_token", b"codename", b"message[]", b""]
LYING_TYPES = [
    b"image/jpeg",
    b"application/pdf",
    b"text/html; charset=utf-8",
    b"image/svg+xml",
    b"application/x-msdownload",
    b"multipart/form-data; boundary=nested",
    b"text/plain; charset=\xff\xfe",
    b"\x00\x01\x02",
    b"a" * 500,
    b"",
]
MAGIC = [b"\xff\xd8\xff\xe0JFIF\x00", b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"PK\x03\x04", b"<html><script>", b"GIF89a"]

_names = st.one_of(st.sampled_from(HOSTILE_NAMES), st.binary(max_size=40), st.text(max_size=40).map(str.encode))


@st.composite
def _contents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["empty", "small", "text", "magic", "large"]))
    if kind == "empty":
        return b""
    if kind == "small":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", errors="surrogatepass")
    if kind == "magic":
        return draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=200))
    # Large but cheap to draw: seeded bytes, sized around the server's limits.
    size = draw(st.sampled_from([70_000, 300_000, 1_100_000]))
    return random.Random(draw(st.integers(0, 2**32 - 1))).randbytes(size)


@st.composite
def parts(draw: st.DrawFn) -> bytes:
    """One part: its headers, a blank line and its content (no boundary)."""
    name = draw(st.one_of(st.sampled_from(FIELD_NAMES), _names))
    filename = draw(st.one_of(st.none(), _names))
    style = draw(st.sampled_from(["quoted", "quoted", "unquoted", "rfc2231", "huge", "attachment", "missing"]))
    if style == "unquoted":
        disposition = b"form-data; name=" + name
    elif style == "attachment":
        disposition = b'attachment; name="' + name + b'"'
    else:
        disposition = b'form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b"; filename*=UTF-8''" + filename if style == "rfc2231" else b'; filename="' + filename + b'"'
    if style == "huge":
        disposition += b'; padding="' + b"p" * draw(st.sampled_from([1_000, 8_000, 20_000])) + b'"'
    headers = [] if style == "missing" else [b"Content-Disposition: " + disposition]
    if draw(st.booleans()):
        headers.append(b"Content-Type: " + draw(st.one_of(st.sampled_from(LYING_TYPES), st.binary(max_size=60))))
    for _ in range(draw(st.integers(0, 2))):
        headers.append(draw(st.binary(min_size=1, max_size=20)) + b": " + draw(st.binary(max_size=60)))
    head = b"\r\n".join(headers)
    return head + b"\r\n\r\n" + draw(_contents())


_boundaries = st.one_of(
    st.just("----buzonFuzzBoundary"),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789'()+_,-./:=?", min_size=1, max_size=70),
    st.sampled_from(["x" * 200, "x" * 201, "a b c", "-", "--", "\u00e9t\u00e9"]),
)


@dataclass(frozen=True)
class MultipartRequest:
    content_type: bytes
    body: bytes

    def __repr__(self) -> str:  # bodies can be megabytes; keep failure reports readable
        return f"MultipartRequest({self.content_type!r}, {len(self.body)} bytes: {self.body[:200]!r}…)"


@st.composite
def multipart_requests(draw: st.DrawFn) -> MultipartRequest:
    """A Content-Type header and a body that is multipart, almost multipart, or cut short."""
    boundary = draw(_boundaries)
    raw_boundary = boundary.encode("utf-8")
    shape = draw(st.sampled_from(["parts", "parts", "parts", "many-tiny", "duplicates"]))
    if shape == "many-tiny":
        name = draw(st.sampled_from([b"files", b"message", b"x", b"website"]))
        count = draw(st.sampled_from([1_000, 3_000, 10_000]))
        filename = b'; filename="t"' if name == b"files" else b""
        chunk = b'Content-Disposition: form-data; name="' + name + b'"' + filename + b"\r\n\r\nz"
        body_parts = [chunk] * count
    elif shape == "duplicates":
        part = draw(parts())
        body_parts = [part] * draw(st.integers(2, 30))
    else:
        body_parts = draw(st.lists(parts(), max_size=6))
    delimiter = b"--" + raw_boundary
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in body_parts) + delimiter + b"--\r\n"
    ending = draw(st.sampled_from(["complete", "complete", "no-final", "truncated", "trailing", "preamble", "bare-lf"]))
    if ending == "no-final":
        body = body[: -len(delimiter) - 4]
    elif ending == "truncated":
        body = body[: draw(st.integers(0, max(0, len(body) - 1)))]
    elif ending == "trailing":
        body += draw(st.binary(min_size=1, max_size=200))
    elif ending == "preamble":
        body = draw(st.binary(max_size=200)) + b"\r\n" + body
    elif ending == "bare-lf":
        body = body.replace(b"\r\n", b"\n")
    header = draw(
        st.sampled_from(
            [
                f"multipart/form-data; boundary={boundary}",
                f'multipart/form-data; boundary="{boundary}"',
                f"multipart/form-data; charset=utf-8; boundary={boundary}",
                f"Multipart/Form-Data; BOUNDARY={boundary}",
                "multipart/form-data; boundary=",
                "multipart/form-data",
                f"multipart/mixed; boundary={boundary}",
                f"multipart/form-data; boundary={boundary}; boundary=other",
            ]
        )
    )
    return MultipartRequest(header.encode("utf-8"), body)
