"""Verification aids in the editor portal: per-file metadata report and safe preview."""

from __future__ import annotations

import hashlib
import io
import re

import httpx
from PIL import Image

from tests.media.test_report import make_jpeg, make_pdf
from tests.support import LiveServer, submit_tip


def _file_items(server: LiveServer, client: httpx.Client) -> list[str]:
    inbox = client.get(f"{server.editor_url}/").text
    (link,) = re.findall(r'href="(/sources/[0-9a-f]+)"', inbox)
    page = client.get(f"{server.editor_url}{link}").text
    return list(dict.fromkeys(re.findall(r"/items/([0-9a-f]+)/download", page)))


def test_report_shows_hash_gps_and_authors_and_preview_is_a_clean_png(live_server: LiveServer) -> None:
    jpeg, pdf = make_jpeg(), make_pdf()
    with httpx.Client() as source:
        # Sent without the strip box ticked, as an old form or a careless source might.
        sent = submit_tip(live_server, source, "photo and report", [("zocalo.jpg", jpeg), ("informe.pdf", pdf)])
        assert sent.status_code == 200
    editor = live_server.instance.add_editor()
    with httpx.Client() as client:
        live_server.login(client, editor)
        reports = {}
        for item_id in _file_items(live_server, client):
            page = client.get(f"{live_server.editor_url}/items/{item_id}/report")
            assert page.status_code == 200
            reports[item_id] = page.text
        (photo_id,) = [i for i, text in reports.items() if "zocalo.jpg" in text]
        (pdf_id,) = [i for i, text in reports.items() if "informe.pdf" in text]
        photo, report_pdf = reports[photo_id], reports[pdf_id]
        assert hashlib.sha256(jpeg).hexdigest() in photo
        assert "19.4326" in photo
        assert "-99.1332" in photo
        assert "Canon" in photo
        assert "Ana Ruiz" in report_pdf
        assert "LibreOffice 7.6" in report_pdf
        assert hashlib.sha256(pdf).hexdigest() in report_pdf
        assert "<script" not in photo + report_pdf

        preview = client.get(f"{live_server.editor_url}/items/{photo_id}/preview")
        assert preview.status_code == 200
        assert preview.headers["content-type"] == "image/png"
        assert preview.headers["x-content-type-options"] == "nosniff"
        image = Image.open(io.BytesIO(preview.content))
        assert image.format == "PNG"
        assert not image.getexif()
        assert b"Canon" not in preview.content
        assert client.get(f"{live_server.editor_url}/items/{pdf_id}/preview").status_code == 404
        assert "Preview" not in report_pdf
    # Logged out, nothing is reachable.
    assert httpx.get(f"{live_server.editor_url}/items/{photo_id}/report").status_code == 303
    assert httpx.get(f"{live_server.editor_url}/items/{photo_id}/preview").status_code == 303
