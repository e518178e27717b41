"""uvicorn's HTTP/1.1 protocol, with the security headers on the one answer it writes itself.

For a request it cannot parse, uvicorn answers 400 before any app or
middleware runs, so that page had none of Buzón's headers (no CSP, no
no-store). This protocol sends the same answer with them.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.web.security import SECURITY_HEADERS

_HEADERS = [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in SECURITY_HEADERS.items()]


class HardenedH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        # As uvicorn's own (uvicorn/protocols/http/h11_impl.py), with the headers added.
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"), *_HEADERS]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=msg.encode("ascii")),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()
