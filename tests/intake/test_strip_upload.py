"""Hidden metadata is stripped on arrival when the source asks, and the editor is told."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.media.test_strip import MARKER, make_jpeg, make_pdf
from tests.support import LiveServer, ServerFactory, SettingsFactory, initialise, post_multipart


def _editor_source_page(server: LiveServer) -> tuple[httpx.Client, str]:
    client = httpx.Client()
    server.login(client, server.instance.add_editor())
    (path,) = re.findall(r'href="(/sources/[0-9a-f]+)"', client.get(f"{server.editor_url}/").text)
    return client, client.get(f"{server.editor_url}{path}").text


def _download(client: httpx.Client, server: LiveServer, page: str, name: str) -> bytes:
    links = dict((n, link) for link, n in re.findall(r'href="(/items/[0-9a-f]+/download)">([^<]+)<', page))
    return client.get(f"{server.editor_url}{links[name]}").content


def test_photo_and_pdf_arrive_without_their_metadata(live_server: LiveServer, client: httpx.Client) -> None:
    jpeg, pdf = make_jpeg(), make_pdf()
    assert MARKER in jpeg
    response = post_multipart(
        client,
        live_server.submit_url(client),
        {"message": "photos", "strip_metadata": "1"},
        [("photo.jpg", jpeg), ("report.pdf", pdf)],
    )
    assert response.status_code == 200
    assert "could not remove" not in response.text
    editor, page = _editor_source_page(live_server)
    try:
        assert page.count("Hidden metadata: removed on arrival") == 2
        for name in ("photo.jpg", "report.pdf"):
            assert MARKER not in _download(editor, live_server, page, name)
    finally:
        editor.close()


def test_without_the_checkbox_the_file_arrives_as_sent(live_server: LiveServer, client: httpx.Client) -> None:
    jpeg = make_jpeg()
    post_multipart(client, live_server.submit_url(client), {"message": "as is"}, [("photo.jpg", jpeg)])
    editor, page = _editor_source_page(live_server)
    try:
        assert "NOT removed (the source chose not to)" in page
        assert _download(editor, live_server, page, "photo.jpg") == jpeg
    finally:
        editor.close()


def test_files_too_large_to_strip_are_stored_as_sent_and_the_source_is_told(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", max_strip_bytes=1024)))
    jpeg = make_jpeg()
    assert len(jpeg) > 1024
    with httpx.Client() as client:
        response = post_multipart(
            client, server.submit_url(client), {"strip_metadata": "1"}, [("big.jpg", jpeg), ("note.txt", b"hi")]
        )
    assert response.status_code == 200
    assert "could not remove hidden data" in response.text
    assert "big.jpg" in response.text
    editor, page = _editor_source_page(server)
    try:
        assert "NOT removed (too large to clean)" in page
        assert "Hidden metadata: none found" in page
        assert _download(editor, server, page, "big.jpg") == jpeg
    finally:
        editor.close()


def test_a_format_no_cleaner_parses_is_named_on_the_receipt_with_what_is_cleaned(
    live_server: LiveServer, client: httpx.Client
) -> None:
    # RTF used to come back "none found", unchanged, author and all, with no word to the source.
    rtf = b"{\\rtf1\\ansi{\\info{\\author Ana Torres}}Denuncia}"
    fields = {"strip_metadata": "1", "message": "see the letter"}
    response = post_multipart(client, live_server.submit_url(client), fields, [("carta.rtf", rtf), ("n.txt", b"hi")])
    assert response.status_code == 200
    assert "could not remove hidden data" in response.text
    assert "carta.rtf" in response.text
    assert "n.txt" not in response.text
    assert "Hidden data is removed from photos (JPEG, PNG, WebP, HEIC), PDF files" in response.text
