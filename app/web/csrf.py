"""CSRF tokens bound to a per-browser cookie, valid long enough for slow uploads.

Each browser gets a random ``csrf`` cookie (HttpOnly, SameSite=Strict). A
form carries ``hour || HMAC(secret, cookie || hour)``; it is accepted while
the cookie matches and the hour is recent. No server state is kept per
visitor, so the source app remembers nobody, and several processes sharing
the data directory accept each other's tokens.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import struct
import time
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET_SIZE = 32
COOKIE_BYTES = 16
_HOUR = 3600


def load_or_create_secret(path: Path) -> bytes:
    """Read the installation's CSRF key, creating it (0600) on first use.

    Several processes may share a data dir and start at once: a new key is
    written to a private file and hard-linked into place, so exactly one key
    wins and no process reads a half-written one.
    """
    if not path.exists():
        candidate = path.with_name(f"{path.name}.{secrets.token_hex(8)}.new")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SECRET_SIZE))
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
        finally:
            candidate.unlink(missing_ok=True)
    secret = path.read_bytes()
    if len(secret) != SECRET_SIZE:
        raise RuntimeError(f"{path} is damaged; delete it to make a new one")
    return secret


class CsrfTokens:
    def __init__(self, secret: bytes, *, lifetime_hours: int) -> None:
        self._secret = secret
        self._lifetime = lifetime_hours

    def _mac(self, cookie: str, hour: int) -> bytes:
        message = cookie.encode("ascii", errors="replace") + struct.pack(">I", hour)
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:16]

    def issue(self, cookie: str) -> str:
        hour = int(time.time()) // _HOUR
        return base64.urlsafe_b64encode(struct.pack(">I", hour) + self._mac(cookie, hour)).decode("ascii")

    def verify(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token or len(token) > 64:
            return False
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return False
        if len(raw) != 20:
            return False
        (hour,) = struct.unpack(">I", raw[:4])
        age = int(time.time()) // _HOUR - hour
        return 0 <= age <= self._lifetime and hmac.compare_digest(raw[4:], self._mac(cookie, hour))


class CsrfCookieMiddleware:
    """Gives every browser a CSRF cookie, visible to the request that set it."""

    def __init__(self, app: ASGIApp, *, cookie_name: str) -> None:
        self.app = app
        self.cookie_name = cookie_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.cookie_name in HTTPConnection(scope).cookies:
            await self.app(scope, receive, send)
            return
        value = secrets.token_urlsafe(COOKIE_BYTES)
        cookie_header = f"{self.cookie_name}={value}".encode("ascii")
        scope = dict(scope)
        scope["headers"] = [*scope["headers"], (b"cookie", cookie_header)]

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(
                    "set-cookie", f"{self.cookie_name}={value}; HttpOnly; SameSite=Strict; Path=/"
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)
