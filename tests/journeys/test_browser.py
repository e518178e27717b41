"""A real Chromium with JavaScript off walks the source and editor journeys.

Chromium is Debian's (/usr/bin/chromium); Playwright never downloads one.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, ViewportSize, expect, sync_playwright

from tests.support import EditorAccount, LiveServer, ServerFactory, SettingsFactory, bodies_in, initialise

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = ViewportSize(width=390, height=844)
DESKTOP = ViewportSize(width=1280, height=800)
SHOTS_DIR = Path("/tmp/buzon-shots")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PageFactory = Callable[[ViewportSize], Page]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[PageFactory]:
    """Pages in fresh JavaScript-less contexts, all closed when the test ends."""
    contexts: list[BrowserContext] = []

    def make(viewport: ViewportSize) -> Page:
        context = browser.new_context(java_script_enabled=False, viewport=viewport, accept_downloads=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@dataclass
class Tip:
    message: str
    file_name: str
    content: bytes

    def files(self) -> list[FilePayload]:
        return [
            FilePayload(name=self.file_name, mimeType="text/plain", buffer=self.content),
            FilePayload(name="second.bin", mimeType="application/octet-stream", buffer=secrets.token_bytes(20_000)),
        ]


def make_tip() -> Tip:
    tag = secrets.token_hex(8)
    return Tip(
        message=f"Tip: MSGMARKER{tag}",
        file_name=f"NAMEMARKER{tag}.txt",
        content=(f"CONTENTMARKER{tag}\n" * 2000).encode(),
    )


def record_requests(page: Page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def assert_no_script(page: Page) -> None:
    expect(page.locator("script")).to_have_count(0)
    assert "<script" not in page.content().lower()


def open_submission_form(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.source_url}/")
    assert_no_script(page)
    page.get_by_role("link", name="Start a submission").click()
    page.wait_for_url(f"{server.source_url}/submit")
    expect(page.get_by_role("heading", name="Your submission")).to_be_visible()
    assert_no_script(page)


def send_form(page: Page, message: str, files: list[FilePayload]) -> int:
    """Fill and send the submission form; return the POST's status code."""
    page.locator('textarea[name="message"]').fill(message)
    page.locator('input[name="files"]').set_input_files(files)
    with page.expect_response(lambda r: r.request.method == "POST") as response:
        page.get_by_role("button", name="Send securely").click()
    page.wait_for_load_state()
    return response.value.status


def read_codename(page: Page) -> str:
    codename = page.locator("#codename")
    expect(codename).to_be_visible()
    return codename.inner_text().strip()


def submit_tip(page: Page, server: LiveServer, tip: Tip) -> str:
    open_submission_form(page, server)
    assert send_form(page, tip.message, tip.files()) == 200
    return read_codename(page)


def test_source_journey_on_a_phone_without_javascript(live_server: LiveServer, new_page: PageFactory) -> None:
    page = new_page(PHONE)
    requests = record_requests(page)

    codename = submit_tip(page, live_server, make_tip())

    words = codename.split()
    assert len(words) == 7, codename
    assert all(re.fullmatch(r"[a-z]+", word) for word in words), codename
    assert_no_script(page)
    assert f"{live_server.source_url}/static/style.css" in requests
    assert [r for r in requests if r.startswith(f"{live_server.source_url}/submit")] != []
    assert {origin(url) for url in requests} == {live_server.source_url}, requests


def log_in(page: Page, base: str, account: EditorAccount) -> None:
    page.goto(f"{base}/login")
    page.locator('input[name="username"]').fill(account.username)
    page.locator('input[name="passphrase"]').fill(account.passphrase)
    page.locator('input[name="otp"]').fill(account.otp())
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")


def test_editor_reads_the_tip_and_downloads_the_file(live_server: LiveServer, new_page: PageFactory) -> None:
    tip = make_tip()
    submit_tip(new_page(PHONE), live_server, tip)
    account = live_server.instance.add_editor()

    page = new_page(DESKTOP)
    requests = record_requests(page)
    log_in(page, live_server.editor_url, account)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    sources = page.locator('table.inbox a[href^="/sources/"]')
    expect(sources).to_have_count(1)
    sources.click()
    page.wait_for_url(re.compile(r".*/sources/[0-9a-f]+$"))
    main = page.locator("main")
    expect(main).to_contain_text(tip.message)
    expect(main).to_contain_text(tip.file_name)

    with page.expect_download() as download_info:
        page.get_by_role("link", name=tip.file_name).click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == tip.file_name
    assert download.path().read_bytes() == tip.content
    assert {origin(url) for url in requests} == {live_server.editor_url}, requests


def test_an_upload_over_the_cap_shows_the_too_large_page(
    tmp_path: Path, server_factory: ServerFactory, new_page: PageFactory, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data2", max_submission_bytes=256 * 1024)
    server = server_factory(initialise(settings))
    page = new_page(PHONE)

    open_submission_form(page, server)
    big = FilePayload(name="big.bin", mimeType="application/octet-stream", buffer=secrets.token_bytes(1024 * 1024))
    status = send_form(page, "This one is too big.", [big])

    assert status == 413
    assert page.url.startswith(f"{server.source_url}/submit?")  # not chrome-error://
    expect(page.get_by_role("alert")).to_contain_text(re.compile("too large", re.IGNORECASE))
    assert "too large" in page.content().lower()
    assert settings.store_dir.is_dir()
    assert bodies_in(settings.store_dir) == []


def test_screenshots_of_the_form_and_the_codename(
    live_server: LiveServer, new_page: PageFactory, tmp_path: Path
) -> None:
    page = new_page(PHONE)
    tip = make_tip()
    shots = {"submit-form": tmp_path / "submit-form.png", "codename": tmp_path / "codename.png"}

    open_submission_form(page, live_server)
    page.screenshot(path=shots["submit-form"], full_page=True)
    assert send_form(page, tip.message, tip.files()) == 200
    assert len(read_codename(page).split()) == 7
    page.screenshot(path=shots["codename"], full_page=True)

    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, path in shots.items():
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 1000, name
        shutil.copyfile(path, SHOTS_DIR / path.name)


def test_editor_journey_invite_enrol_triage_verify_reply_delete(live_server: LiveServer, new_page: PageFactory) -> None:
    """invite → enrol → login → triage → verify a file → reply → delete, all with JavaScript off."""
    base = live_server.editor_url
    tip = make_tip()
    submit_tip(new_page(PHONE), live_server, tip)
    admin = live_server.instance.add_editor("chief", admin=True)
    admin_page = new_page(DESKTOP)
    log_in(admin_page, base, admin)
    admin_page.get_by_role("link", name="Editors").click()
    admin_page.get_by_label("Username").fill("rosa")
    admin_page.get_by_role("button", name="Create a one-time link").click()
    link = admin_page.locator("#invite-link").inner_text()

    page = new_page(PHONE)
    page.goto(link)
    passphrase = page.locator("#suggestion").inner_text()  # the generated passphrase is good enough
    page.get_by_label("Passphrase", exact=True).fill(passphrase)
    page.get_by_label("The same passphrase again").fill(passphrase)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    account = EditorAccount("rosa", passphrase, page.locator("#totp-secret").inner_text().replace(" ", ""))
    page.get_by_label("Code from the app").fill(account.otp())
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="Your account is ready, rosa")).to_be_visible()
    assert_no_script(page)

    admin_page.goto(f"{base}/admin/editors")
    admin_page.locator("tr", has_text="rosa").get_by_role("button", name="Grant access").click()
    expect(admin_page.locator("tr", has_text="rosa")).to_contain_text("yes")

    page.set_viewport_size(DESKTOP)
    log_in(page, base, account)
    page.locator('table.inbox a[href^="/sources/"]').click()
    page.wait_for_url(re.compile(r".*/sources/[0-9a-f]+$"))
    source_url = page.url

    page.get_by_label("Status").select_option("verifying")
    page.get_by_role("button", name="Set status").click()
    page.wait_for_url(source_url)
    expect(page.get_by_label("Status")).to_have_value("verifying")
    page.get_by_role("button", name="Star", exact=True).click()
    expect(page.get_by_role("button", name="Remove star")).to_be_visible()
    page.get_by_label("Add a tag").fill("ministry")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("ul.tags")).to_contain_text("ministry")
    page.get_by_label("Add a note").fill("Check with the archive")
    page.get_by_role("button", name="Save note").click()
    expect(page.locator("section.notes")).to_contain_text("Check with the archive")
    assert_no_script(page)

    page.get_by_role("link", name="Metadata report and safe preview").first.click()
    expect(page.locator("#sha256")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    assert_no_script(page)
    page.goto(source_url)
    page.get_by_label("Reply").fill("Gracias. ¿Puede enviar el documento original?")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("section.replies")).to_contain_text("by rosa")
    expect(page.locator("section.replies .reply-state")).to_have_text("unread")

    page.goto(f"{live_server.editor_url}/?status=verifying&starred=1")
    expect(page.locator('table.inbox a[href^="/sources/"]')).to_have_count(1)
    page.get_by_label("Search messages, file names and notes").fill(tip.message.split(":")[1].strip().lower())
    page.get_by_role("button", name="Search").click()
    expect(page.locator('table.inbox a[href^="/sources/"]')).to_have_count(1)

    page.goto(source_url)
    page.get_by_role("link", name="Delete this source…").click()
    page.get_by_role("button", name="Delete this source and everything it sent").click()
    page.wait_for_url(f"{live_server.editor_url}/")
    expect(page.locator('table.inbox a[href^="/sources/"]')).to_have_count(0)
    assert bodies_in(live_server.instance.settings.store_dir) == []
