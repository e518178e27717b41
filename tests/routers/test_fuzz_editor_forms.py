"""Hypothesis against a real editor portal: login, triage, replies, admin invites and enrolment.

As for the source interface (tests/routers/test_fuzz_source_forms.py): no 5xx, no
internals in any page, no traceback in the log, no half-written body, and no
tip created or lost by any of these forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.db.models import Editor, Source
from app.db.session import make_engine, make_session_factory
from app.services import invites
from tests.fuzz.live import FUZZ, FUZZ_SETTINGS, Watch, start_module_server
from tests.fuzz.multipart import HOSTILE_NAMES
from tests.support import EditorAccount, LiveServer, SettingsFactory, csrf_token_in, initialise, submit_tip

TOKENS = st.sampled_from(["valid", "valid", "valid", "missing", "garbage"])
_HOSTILE_TEXT = [name.decode("utf-8", errors="replace") for name in HOSTILE_NAMES] + [
    "<script>alert(1)</script>",
    "'\"><img src=x>",
    "{{ 7 * 7 }}",
    "%(x)s",
    "\u202e\u2066\u200b",
    "x" * 70_000,
]
TEXTS = st.one_of(st.text(max_size=200), st.sampled_from(_HOSTILE_TEXT))


@dataclass(frozen=True)
class Desk:
    server: LiveServer
    account: EditorAccount
    invite_token: str
    source_id: str
    tag_id: str
    note_id: str
    reply_id: str


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory, make_settings: SettingsFactory) -> Iterator[Desk]:
    root = tmp_path_factory.mktemp("fuzz-editor")
    instance = initialise(make_settings(root / "data", **FUZZ_SETTINGS))
    account = instance.add_editor("fuzz-admin", admin=True)
    engine = make_engine(instance.settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        token = invites.create_invite(session=session, username="newcomer", is_admin=False, actor="test")
    for server in start_module_server(instance, root):
        with httpx.Client(timeout=60) as client:
            submit_tip(server, client, "a tip to triage")
        with make_session_factory(engine)() as session:
            source_id = session.query(Source).one().id
        with httpx.Client(timeout=60) as client:
            server.login(client, account)
            page = f"/sources/{source_id}"
            for action, data in (("tags", {"name": "fuzz"}), ("notes", {"text": "a note"}), ("reply", {"reply": "hi"})):
                assert server.post_form(client, server.editor_url, page, f"{page}/{action}", data).status_code == 303
            html = client.get(f"{server.editor_url}{page}").text
        found = {
            name: re.search(pattern, html)
            for name, pattern in (("tag", r"/tags/([^/]+)/remove"), ("note", r"/notes/([0-9a-f]{32})/delete"))
        }
        reply = re.search(r"/replies/([0-9a-f]{32})/delete", html)
        assert found["tag"], html
        assert found["note"], html
        assert reply, html
        yield Desk(server, account, token, source_id, found["tag"][1], found["note"][1], reply[1])
    engine.dispose()


@pytest.fixture(scope="module")
def watch(desk: Desk) -> Iterator[Watch]:
    watch = Watch(desk.server)
    yield watch
    watch.check_log()
    watch.close()


@pytest.fixture(scope="module")
def editor(desk: Desk) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        desk.server.login(client, desk.account)
        yield client


def _segment(text: str) -> str:
    # Dots too: a client would resolve a ".." segment itself and post somewhere else entirely.
    return quote(text, safe="").replace(".", "%2E")


def _editor_count(watch: Watch) -> int:
    with make_session_factory(make_engine(watch.settings.resolved_database_url))() as session:
        return session.query(Editor).count()


@st.composite
def _forms(draw: st.DrawFn, fields: list[str]) -> tuple[bytes, bytes, dict[str, str]]:
    """(Content-Type, body, the fields as drawn) of a small form, sometimes not a form at all."""
    data = {name: draw(TEXTS) for name in fields if draw(st.integers(0, 3))}
    data.update(draw(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=2)))
    shape = draw(st.sampled_from(["form"] * 5 + ["raw", "multipart", "json", "duplicate"]))
    urlencoded = b"application/x-www-form-urlencoded"
    if shape == "raw":
        return urlencoded, draw(st.binary(max_size=2000)), {}
    if shape == "multipart":
        return (
            b"multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--',
            {},
        )
    if shape == "json":
        return b"application/json", b'{"status": "spam"}', {}
    body = urlencode(data).encode()
    if shape == "duplicate":
        body += b"&" + body
    return urlencoded, body, data


def _post(
    watch: Watch, client: httpx.Client, url: str, form: tuple[bytes, bytes, dict[str, str]], token: str
) -> httpx.Response:
    content_type, body, data = form
    if content_type.startswith(b"application/x-www") and token != "missing":
        page = client.get(f"{watch.server.editor_url}/login").text
        value = csrf_token_in(page) if token == "valid" else "\x00" + "A" * 70
        body += b"&csrf_token=" + quote(value).encode()
    before = watch.snapshot()
    editors_before = _editor_count(watch)
    response = client.post(url, content=body, headers={b"Content-Type": content_type})
    watch.check_page(response.status_code, response.content, shows_ids=response.status_code < 400)
    for value in data.values():
        if "<" in value and len(value) > 3:
            assert value not in response.text  # echoed only escaped
    assert watch.snapshot().rows == before.rows
    watch.check_store(before, new_source=None)
    assert _editor_count(watch) == editors_before
    watch.check_log()
    return response


@FUZZ
@given(
    form=_forms(["username", "passphrase", "otp"]),
    token=TOKENS,
    known=st.sampled_from(["", "username", "passphrase"]),
)
def test_editor_login_survives_fuzzed_forms(
    desk: Desk,
    watch: Watch,
    editor: httpx.Client,
    form: tuple[bytes, bytes, dict[str, str]],
    token: str,
    known: str,
) -> None:
    # ``editor`` logged in first: this fuzz soon trips the login throttle, for every account.
    content_type, _, data = form
    if known and content_type.startswith(b"application/x-www"):
        data = {**data, "username": desk.account.username}
        if known == "passphrase":
            data["passphrase"] = desk.account.passphrase
        form = (content_type, urlencode(data).encode(), data)
    with httpx.Client(timeout=60) as client:
        response = _post(watch, client, f"{desk.server.editor_url}/login", form, token)
        assert response.status_code != 303  # no guessed code opens the portal


_SOURCE_ACTIONS = {
    "status": ["status"],
    "star": ["starred"],
    "assign": ["assignee"],
    "hide": ["hidden"],
    "tags": ["name"],
    "tags/{tag}/remove": [],
    "notes": ["text"],
    "notes/{note}/delete": [],
    "reply": ["reply"],
    "replies/{reply}/delete": [],
}
_ADMIN_ACTIONS = {"/admin/invites": ["username", "admin"], "/admin/invites/cancel": ["username"]}
_IDS = st.one_of(st.text(max_size=40), st.sampled_from(["..", "%00", "-1", "1e9", "99999999999999999999", "x" * 3000]))


@st.composite
def _desk_posts(draw: st.DrawFn, desk: Desk) -> tuple[str, tuple[bytes, bytes, dict[str, str]]]:
    """A fuzzed form for one of the portal's POST routes, at a real or made-up address."""
    kind = draw(st.sampled_from(["source", "source", "source", "admin", "item", "delete-source"]))
    if kind == "admin":
        path = draw(st.sampled_from(sorted(_ADMIN_ACTIONS)))
        return path, draw(_forms(_ADMIN_ACTIONS[path]))
    if kind in ("item", "delete-source"):
        # Deletions only at made-up addresses: the fuzz must not empty its own desk.
        made_up = _segment(draw(_IDS))
        return (f"/items/{made_up}/delete" if kind == "item" else f"/sources/{made_up}/delete"), draw(_forms([]))
    action = draw(st.sampled_from(sorted(_SOURCE_ACTIONS)))
    real = {"tag": desk.tag_id, "note": desk.note_id, "reply": desk.reply_id}
    ids = {name: real[name] if draw(st.booleans()) else _segment(draw(_IDS)) for name in real}
    source = desk.source_id if draw(st.integers(0, 3)) else _segment(draw(_IDS))
    return f"/sources/{source}/{action.format(**ids)}", draw(_forms(_SOURCE_ACTIONS[action]))


@FUZZ
@given(data=st.data(), token=TOKENS, logged_in=st.integers(0, 4))
def test_desk_posts_survive_fuzzed_forms(
    desk: Desk, watch: Watch, editor: httpx.Client, data: st.DataObject, token: str, logged_in: int
) -> None:
    path, form = data.draw(_desk_posts(desk), label="post")
    if logged_in:
        response = _post(watch, editor, f"{desk.server.editor_url}{path}", form, token)
        assert response.status_code != 303 or token == "valid"
    else:
        with httpx.Client(timeout=60) as anon:
            response = _post(watch, anon, f"{desk.server.editor_url}{path}", form, token)
            # Logged out, nothing changes: the answer is the login page (or a refusal before it).
            assert response.status_code in (303, 400, 403, 404, 405, 422) or response.status_code < 300
            if response.status_code == 303:
                assert response.headers["location"] == "/login"
    # The session survived.
    assert editor.get(f"{desk.server.editor_url}/").status_code == 200


@FUZZ
@given(
    token=st.one_of(st.just("real"), _IDS),
    step=st.sampled_from(["passphrase", "passphrase", "confirm", "both"]),
    form=_forms(["passphrase", "passphrase_confirm"]),
    otp=st.one_of(st.text(max_size=12), st.from_regex(r"[0-9]{6}", fullmatch=True)),
    strong=st.booleans(),
    csrf=TOKENS,
)
def test_invite_enrolment_survives_fuzzed_forms(
    desk: Desk,
    watch: Watch,
    token: str,
    step: str,
    form: tuple[bytes, bytes, dict[str, str]],
    otp: str,
    strong: bool,
    csrf: str,
) -> None:
    invite = desk.invite_token if token == "real" else _segment(token)
    base = f"{desk.server.editor_url}/invite/{invite}"
    with httpx.Client(timeout=60) as client:
        if step in ("passphrase", "both"):
            if strong and form[0].startswith(b"application/x-www"):
                passphrase = "correct horse battery staple ñandú 42 \u202e"
                data = {"passphrase": passphrase, "passphrase_confirm": passphrase}
                form = (form[0], urlencode(data).encode(), data)
            _post(watch, client, base, form, csrf)
        if step in ("confirm", "both"):
            _post(
                watch,
                client,
                f"{base}/confirm",
                (b"application/x-www-form-urlencoded", urlencode({"otp": otp}).encode(), {"otp": otp}),
                csrf,
            )
    assert _editor_count(watch) == 1


def test_the_fuzzed_portal_still_works(desk: Desk, watch: Watch, editor: httpx.Client) -> None:
    page = editor.get(f"{desk.server.editor_url}/sources/{desk.source_id}")
    assert page.status_code == 200
    assert "a tip to triage" in page.text
    watch.check_log()
