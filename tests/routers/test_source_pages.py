"""Every source page: its language, its weight, its headers, and what it never records."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app.web.i18n import LOCALE_NAMES
from app.web.security import CONTENT_SECURITY_POLICY
from tests.support import LiveServer, ServerFactory, SettingsFactory, codename_in, initialise, submit_tip, translated

PAGES = ("/", "/submit", "/login", "/tor")
MAX_PAGE_BYTES = 30 * 1024
ONION = "a" * 55 + "d.onion"


@pytest.mark.parametrize("locale", sorted(LOCALE_NAMES))
def test_every_page_speaks_the_chosen_language(live_server: LiveServer, locale: str) -> None:
    with httpx.Client() as client:
        first = client.get(f"{live_server.source_url}/?lang={locale}")
        assert client.cookies.get("buzon_lang") == locale
        assert first.headers["content-language"] == locale.replace("_", "-")
        for path in PAGES:
            page = client.get(f"{live_server.source_url}{path}")  # the cookie remembers the choice
            assert f'<html lang="{locale.replace("_", "-")}" dir="ltr">' in page.text
            assert translated(locale, "Using Tor Browser safely") in page.text
        submit = client.get(f"{live_server.source_url}/submit").text
        assert translated(locale, "Send securely") in submit
        assert translated(locale, "Remove hidden data (location, device, author) from photos and documents") in submit


def test_accept_language_picks_the_default(live_server: LiveServer, client: httpx.Client) -> None:
    page = client.get(f"{live_server.source_url}/", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    assert '<html lang="pt-BR"' in page.text
    assert "buzon_lang" not in client.cookies  # only an explicit choice is remembered


@pytest.mark.parametrize(("locale", "written"), [("en", "100,000"), ("es", "100.000"), ("pt_BR", "100.000")])
def test_numbers_are_written_the_readers_way(live_server: LiveServer, locale: str, written: str) -> None:
    with httpx.Client() as client:
        form = client.get(f"{live_server.source_url}/submit?lang={locale}").text
    assert translated(locale, "Up to %(count)s characters.") % {"count": written} in form


def test_error_pages_are_translated(live_server: LiveServer, client: httpx.Client) -> None:
    page = client.get(f"{live_server.source_url}/nowhere?lang=es")
    assert page.status_code == 404
    assert translated("es", "Page not found") in page.text


@pytest.mark.parametrize("locale", sorted(LOCALE_NAMES))
def test_pages_are_light_and_self_contained(live_server: LiveServer, client: httpx.Client, locale: str) -> None:
    css = client.get(f"{live_server.source_url}/static/style.css").content
    for path in PAGES:
        page = client.get(f"{live_server.source_url}{path}?lang={locale}")
        assert len(page.content) + len(css) <= MAX_PAGE_BYTES, path
        assert "<script" not in page.text.lower()
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page.text, re.IGNORECASE)  # no inline handlers
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', page.text):
            assert url.startswith(("/", "?", "#")), url


def _assert_hardened(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert headers["cross-origin-resource-policy"] == "same-origin"
    for absent in ("server", "etag", "last-modified", "x-powered-by"):
        assert absent not in headers
    for cookie in headers.get_list("set-cookie"):
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie or "samesite=strict" in cookie.lower()


def test_every_route_is_hardened(live_server: LiveServer, client: httpx.Client) -> None:
    for path in (*PAGES, "/home", "/static/style.css", "/nowhere"):
        _assert_hardened(client.get(f"{live_server.source_url}{path}"))
    codename = codename_in(submit_tip(live_server, client, "headers").text)
    login = live_server.post_form(client, live_server.source_url, "/login", "/login", {"codename": codename})
    _assert_hardened(login)
    _assert_hardened(client.get(f"{live_server.source_url}/home"))
    _assert_hardened(live_server.post_form(client, live_server.source_url, "/home", "/logout", {}))
    with httpx.Client() as editor:
        _assert_hardened(editor.get(f"{live_server.editor_url}/login"))
        live_server.login(editor, live_server.instance.add_editor())
        _assert_hardened(editor.get(f"{live_server.editor_url}/"))


@pytest.mark.parametrize("path", ["/login", "/logout", "/replies/abc/delete", "/submit"])
def test_every_post_needs_a_csrf_token(live_server: LiveServer, client: httpx.Client, path: str) -> None:
    client.get(f"{live_server.source_url}/")
    response = client.post(f"{live_server.source_url}{path}", data={"codename": "x"})
    assert response.status_code in (401, 403)
    if response.status_code == 403:
        assert "expired" in response.text


def test_onion_warning_and_onion_location(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", onion_address=ONION)))
    with httpx.Client() as client:
        clearnet = client.get(f"{server.source_url}/submit")
        assert ONION in clearnet.text
        assert clearnet.headers["onion-location"] == f"http://{ONION}/submit"
        via_onion = client.get(f"{server.source_url}/submit", headers={"Host": ONION})
        assert "onion-location" not in via_onion.headers
        assert "not using this tip line's onion address" not in via_onion.text


def test_no_client_address_or_user_agent_is_recorded(live_server: LiveServer) -> None:
    user_agent = "BuzonTestAgent/9.9 (fingerprint-marker-5eb1)"
    forwarded = "203.0.113.77"
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    headers = {"User-Agent": user_agent, "X-Forwarded-For": forwarded, "X-Real-IP": forwarded}
    with httpx.Client(transport=transport, headers=headers) as client:
        codename = codename_in(submit_tip(live_server, client, "who am I", [("f.txt", b"x")]).text)
        live_server.post_form(client, live_server.source_url, "/login", "/login", {"codename": codename})
        client.get(f"{live_server.source_url}/home")
        client.get(f"{live_server.source_url}/nowhere")
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), headers=headers) as editor:
        live_server.login(editor, live_server.instance.add_editor())
        editor.get(f"{live_server.editor_url}/")
    needles = [b"127.0.0.2", forwarded.encode(), b"fingerprint-marker-5eb1", b"BuzonTestAgent"]
    for path in live_server.log_path.parent.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [n for n in needles if n in data], path
