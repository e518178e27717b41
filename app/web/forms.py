"""Small url-encoded forms (logins, buttons), read without Starlette's parser.

Starlette's form parser would accept a multipart body and spool it to disk;
these forms never carry files, so anything but a short url-encoded body is
refused before it is read.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from app.errors import MalformedSubmission

MAX_FORM_BYTES = 16 * 1024


async def read_small_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise MalformedSubmission()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise MalformedSubmission()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedSubmission() from e
    return dict(pairs)
