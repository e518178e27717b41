"""The whole source journey in a real browser with JavaScript off, in every shipped language.

First submission with two files, codename login, reading a reply, deleting it,
and a follow-up: each step in Spanish, Brazilian Portuguese, French and English.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect, sync_playwright

from app.codenames import wordlist
from app.web.i18n import LOCALE_NAMES
from tests.journeys.test_browser import CHROMIUM, CHROMIUM_ARGS, PHONE
from tests.support import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def _submit(page: Page, message: str, files: list[FilePayload] | None = None) -> int:
    form = page.locator('form[enctype="multipart/form-data"]')
    form.locator('textarea[name="message"]').fill(message)
    expect(form.locator('input[name="strip_metadata"]')).to_be_checked()
    if files:
        form.locator('input[name="files"]').set_input_files(files)
    with page.expect_response(lambda r: r.request.method == "POST") as response:
        form.locator('button[type="submit"]').click()
    page.wait_for_load_state()
    return response.value.status


def _reply_as_editor(server: LiveServer, text: str) -> None:
    with httpx.Client() as editor:
        server.login(editor, server.instance.add_editor())
        (source_path,) = re.findall(r'href="(/sources/[0-9a-f]+)"', editor.get(f"{server.editor_url}/").text)
        sent = server.post_form(editor, server.editor_url, source_path, f"{source_path}/reply", {"reply": text})
        assert sent.status_code == 303


@pytest.mark.parametrize("locale", sorted(LOCALE_NAMES))
def test_the_whole_journey_in_each_language(live_server: LiveServer, page: Page, locale: str) -> None:
    tag = secrets.token_hex(6)
    base = live_server.source_url
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(f"{base}/")
    page.locator(f'a[href="?lang={locale}"], strong[lang="{locale.replace("_", "-")}"]').first.click()
    expect(page.locator("html")).to_have_attribute("lang", locale.replace("_", "-"))
    page.locator('a[href="/submit"]').first.click()
    files = [
        FilePayload(name=f"notes-{tag}.txt", mimeType="text/plain", buffer=f"first file {tag}".encode()),
        FilePayload(name="photo.bin", mimeType="application/octet-stream", buffer=secrets.token_bytes(30_000)),
    ]
    assert _submit(page, f"first message {tag}", files) == 200
    codename = page.locator("#codename").inner_text().strip()
    assert len(codename.split()) == 7
    assert set(codename.split()) <= set(wordlist(locale))  # a codename in the source's language
    expect(page.locator("html")).to_have_attribute("lang", locale.replace("_", "-"))

    _reply_as_editor(live_server, f"Reply {tag}: thank you.")

    page.goto(f"{base}/login")
    page.locator('input[name="codename"]').fill(codename)
    page.locator('form[action="/login"] button[type="submit"]').click()
    page.wait_for_url(f"{base}/home")
    expect(page.locator(".reply pre")).to_have_text(f"Reply {tag}: thank you.")

    assert _submit(page, f"follow-up {tag}") == 200
    expect(page.locator("#codename")).to_have_count(0)
    page.locator('a[href="/home"]').click()

    page.locator('form[action^="/replies/"] button').click()
    page.wait_for_url(f"{base}/home")
    expect(page.locator(".reply")).to_have_count(0)

    page.locator('form[action="/logout"] button').click()
    expect(page.locator("main")).to_contain_text(
        {"en": "New Identity", "es": "Nueva identidad", "fr": "Nouvelle identité", "pt_BR": "Nova identidade"}[locale]
    )
    assert all(url.startswith(base) for url in requests), requests
    assert page.locator("script").count() == 0
