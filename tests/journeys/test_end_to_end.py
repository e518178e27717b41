"""A tip travels from the HTTP form to an editor's screen; only ciphertext is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

import httpx

from tests.support import LiveServer
from tests.support.desk import database_traces


def _markers() -> dict[str, str]:
    tag = secrets.token_hex(8)
    return {
        "message": f"MSGMARKER{tag}",
        "filename": f"NAMEMARKER{tag}.txt",
        "content": f"CONTENTMARKER{tag}",
    }


def _scan(root: Path, needles: list[bytes]) -> list[tuple[Path, bytes]]:
    """Every (file, needle) pair where the needle occurs anywhere in the file."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path, needle) for needle in needles if needle in data]
    return found


def _needles(markers: dict[str, str]) -> list[bytes]:
    # Look for each marker in the encodings a careless implementation might
    # write: UTF-8, UTF-16 (SQLite text can be either) and hex.
    values = [m.encode() for m in markers.values()]
    return values + [m.encode("utf-16-le") for m in markers.values()] + [v.hex().encode() for v in values]


def test_only_ciphertext_is_stored_and_the_editor_reads_everything(
    live_server: LiveServer, client: httpx.Client
) -> None:
    markers = _markers()
    content = (markers["content"] + "\n") * 5000  # ~150 KB: spans several chunks
    response = client.post(
        live_server.submit_url(client),
        data={"message": f"Tip: {markers['message']}"},
        files=[
            ("files", (markers["filename"], content.encode(), "text/plain")),
            ("files", ("second.bin", secrets.token_bytes(70_000), "application/octet-stream")),
        ],
    )
    assert response.status_code == 200, response.text
    codename = re.search(r'id="codename">([^<]+)<', response.text)
    assert codename is not None
    assert len(codename.group(1).split()) == 7

    needles = [*_needles(markers), codename.group(1).encode()]
    assert _scan(live_server.data_dir, needles) == []
    assert database_traces(live_server, needles) == []
    assert _scan(live_server.tmp_dir, needles) == []
    assert _scan(live_server.log_path.parent, needles) == []

    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    inbox = client.get(f"{live_server.editor_url}/")
    assert inbox.status_code == 200
    source_links = re.findall(r'href="(/sources/[0-9a-f]+)"', inbox.text)
    assert len(source_links) == 1
    page = client.get(f"{live_server.editor_url}{source_links[0]}")
    assert markers["message"] in page.text
    assert markers["filename"] in page.text
    assert hashlib.sha256(content.encode()).hexdigest() in page.text

    downloads = re.findall(r'href="(/items/[0-9a-f]+/download)">([^<]+)<', page.text)
    by_name = {name: link for link, name in downloads}
    download = client.get(f"{live_server.editor_url}{by_name[markers['filename']]}")
    assert download.status_code == 200
    assert download.content == content.encode()
    assert download.headers["content-type"] == "application/octet-stream"
    assert "attachment" in download.headers["content-disposition"]


def test_source_pages_carry_no_script_and_strict_headers(live_server: LiveServer, client: httpx.Client) -> None:
    for path in ("/", "/submit", "/no-such-page", "/static/style.css"):
        response = client.get(f"{live_server.source_url}{path}")
        assert "<script" not in response.text.lower()
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "etag" not in response.headers
        assert "server" not in response.headers


def test_source_app_mounts_no_editor_route(live_server: LiveServer, client: httpx.Client) -> None:
    for path in ("/sources/x", "/items/x/download", "/sources/x/reply"):
        assert client.get(f"{live_server.source_url}{path}").status_code in (404, 405)
    login = client.get(f"{live_server.source_url}/login").text
    assert 'name="codename"' in login
    assert 'name="otp"' not in login
    assert 'name="passphrase"' not in login


def test_editor_pages_require_login(live_server: LiveServer, client: httpx.Client) -> None:
    for path in ("/", "/sources/abc", "/items/abc/download"):
        response = client.get(f"{live_server.editor_url}{path}")
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
