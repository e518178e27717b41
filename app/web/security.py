"""Response headers and the cross-origin check shared by both apps."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def is_cross_origin(headers: Headers) -> bool:
    """True when a browser says the request came from another site.

    This backs up the CSRF token. Under ``Referrer-Policy: no-referrer``
    browsers send ``Origin: null`` even on same-site posts, so ``null`` and a
    missing header pass; only a named foreign origin is refused.
    """
    if headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return False
    return origin.split("://", 1)[-1] != headers.get("host", "")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                # Validators would let a cache or a seized proxy match visits.
                for name in ("etag", "last-modified", "server"):
                    del headers[name]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_unsafe_method(method: str) -> bool:
    return method.upper() not in _SAFE_METHODS


def is_off_onion(headers: Headers, onion_address: str | None) -> bool:
    """True when an onion address is configured but this request came by another name."""
    if not onion_address:
        return False
    host = headers.get("host", "").rsplit(":", 1)[0].lower()
    return host != onion_address


class OnionLocationMiddleware:
    """Points Tor Browser at the onion address when a page is served by another name."""

    def __init__(self, app: ASGIApp, *, onion_address: str | None) -> None:
        self.app = app
        self.onion_address = onion_address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_off_onion(Headers(scope=scope), self.onion_address):
            await self.app(scope, receive, send)
            return
        location = f"http://{self.onion_address}{scope['path']}"

        async def send_with_location(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Onion-Location"] = location
            await send(message)

        await self.app(scope, receive, send_with_location)
