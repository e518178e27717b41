"""The page that shows a new TOTP secret: a QR code drawn here, and the key grouped for typing."""

from __future__ import annotations

import segno
from markupsafe import Markup

from app.services import editors


def totp_setup_context(*, username: str, totp_secret: str, action: str, error: bool) -> dict[str, object]:
    uri = editors.totp_uri(username=username, totp_secret=totp_secret)
    # Drawn on the server as inline SVG: no script, no image request, no third party.
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, light="#fff"))  # noqa: S704 - our own markup
    grouped = " ".join(totp_secret[i : i + 4] for i in range(0, len(totp_secret), 4))
    return {"username": username, "qr": qr, "secret": grouped, "error": error, "action": action}
