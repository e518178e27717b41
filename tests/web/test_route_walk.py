"""Walks the route table of both apps on a real server and checks every security header on every answer.

Each route is called with every method it declares and with one it does not
(DELETE, which no route takes), with made-up and with real path parameters,
logged out and logged in. POSTs carry no CSRF token, so the walk changes
nothing. A route the walk cannot fill in or reach fails the test: a new route
must be reachable here before it ships.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from PIL import Image
from sqlalchemy import select
from starlette.routing import Mount

from app.db.models import Approval, Editor, Item, Source
from app.db.session import make_engine, make_session_factory
from app.main import STATIC_DIR, create_editor_app, create_source_app
from app.services import approvals, invites
from app.web.security import CONTENT_SECURITY_POLICY
from tests.fuzz.live import start_module_server
from tests.support import EditorAccount, LiveServer, SettingsFactory, codename_in, initialise, submit_tip
from tests.support.routes import declared_routes

UNDECLARED = "DELETE"
MADE_UP = {
    "source_id": "0" * 32,
    "item_id": "f" * 32,
    "reply_id": "e" * 32,
    "tag_id": "d" * 32,
    "note_id": "999999",
    "editor_id": "c" * 32,
    "approval_id": "a" * 32,
    "token": "not-an-invite",
}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


@dataclass
class Walk:
    server: LiveServer
    admin: EditorAccount
    codename: str
    real: dict[str, str]
    answers: int = 0
    reached: set[tuple[str, str]] = field(default_factory=set)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory, make_settings: SettingsFactory) -> Iterator[Walk]:
    root = tmp_path_factory.mktemp("route-walk")
    instance = initialise(make_settings(root / "data"))
    admin = instance.add_editor("walker", admin=True)
    engine = make_engine(instance.settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        token = invites.create_invite(session=session, username="invited", is_admin=False, actor="test")
    for server in start_module_server(instance, root):
        with httpx.Client(timeout=60) as client:
            codename = codename_in(submit_tip(server, client, "a tip", [("red.png", _png())]).text)
        with make_session_factory(engine)() as session:
            source_id = session.scalars(select(Source.id)).one()
            item_id = session.scalars(select(Item.id).where(Item.kind == "file")).one()
            editor_id = session.scalars(select(Editor.id)).one()
            by = approvals.Actor(editor_id, "walker", is_admin=True)
            approvals.request(session, action=approvals.DELETE_SOURCE, target_id=source_id, by=by)
            approval_id = session.scalars(select(Approval.id)).one()
        with httpx.Client(timeout=60) as client:
            server.login(client, admin)
            page = f"/sources/{source_id}"
            for action, data in (("tags", {"name": "walk"}), ("notes", {"text": "a note"}), ("reply", {"reply": "hi"})):
                assert server.post_form(client, server.editor_url, page, f"{page}/{action}", data).status_code == 303
            html = client.get(f"{server.editor_url}{page}").text
        ids = {
            name: re.search(pattern, html)
            for name, pattern in (
                ("tag_id", r"/tags/([^/]+)/remove"),
                ("note_id", r"/notes/([0-9a-f]{32})/delete"),
                ("reply_id", r"/replies/([0-9a-f]{32})/delete"),
            )
        }
        real = {name: match[1] for name, match in ids.items() if match}
        assert len(real) == 3, html
        real |= {
            "source_id": source_id,
            "item_id": item_id,
            "editor_id": editor_id,
            "token": token,
            "approval_id": approval_id,
        }
        yield Walk(server, admin, codename, real)
    engine.dispose()


def _assert_hardened(response: httpx.Response, what: str) -> None:
    headers = response.headers
    assert response.status_code < 500, (what, response.text[:500])
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, what
    assert headers.get("referrer-policy") == "no-referrer", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("cache-control") == "no-store", what
    assert headers.get("cross-origin-opener-policy") == "same-origin", what
    assert headers.get("cross-origin-resource-policy") == "same-origin", what
    for absent in ("server", "etag", "last-modified", "x-powered-by"):
        assert absent not in headers, (what, absent)
    for cookie in headers.get_list("set-cookie"):
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in attributes, (what, cookie)
        assert "samesite=strict" in attributes, (what, cookie)


def _targets(app: FastAPI) -> Iterator[tuple[str, str, set[str]]]:
    """(route name for reports, path template, declared methods) of every route, static files included."""
    for path, route in declared_routes(app):
        if isinstance(route, APIRoute):
            yield path, path, set(route.methods or ())
        elif isinstance(route, Mount) and path == "/static":
            for child in sorted(STATIC_DIR.iterdir()):
                yield path, f"{path}/{child.name}", {"GET", "HEAD"}
            yield path, f"{path}/nowhere.css", {"GET"}
        else:
            pytest.fail(f"the route walk cannot reach {route!r}: teach it this kind of route")


def _fill(template: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(f"the route walk has no value for {{{name}}} in {template}: add one")
        return values[name]

    return _PARAM.sub(value, template)


def _walk_app(walk: Walk, app: FastAPI, base: str, client: httpx.Client, label: str) -> None:
    for route, template, methods in _targets(app):
        paths = {_fill(template, MADE_UP), _fill(template, walk.real)}
        for path in sorted(paths):
            for method in sorted(methods | {UNDECLARED}):
                headers = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
                response = client.request(method, f"{base}{path}", headers=headers, content=b"")
                _assert_hardened(response, f"{label} {method} {path} -> {response.status_code}")
                walk.answers += 1
                if method == UNDECLARED:
                    assert response.status_code == 405, (label, path, response.status_code)
                    walk.reached.add((label, route))


def _apps(walk: Walk) -> tuple[FastAPI, FastAPI]:
    # Built from the same settings as the server, only to read their route tables.
    settings = walk.server.instance.settings
    return create_source_app(settings), create_editor_app(settings)


def test_every_route_of_both_apps_is_hardened(walk: Walk) -> None:
    source_app, editor_app = _apps(walk)
    server = walk.server
    try:
        with httpx.Client(timeout=60) as anon:
            _walk_app(walk, source_app, server.source_url, anon, "source, logged out")
        with httpx.Client(timeout=60) as source:
            data = {"codename": walk.codename}
            assert server.post_form(source, server.source_url, "/login", "/login", data).status_code == 303
            _walk_app(walk, source_app, server.source_url, source, "source, logged in")
            assert source.get(f"{server.source_url}/home").status_code == 200  # the walk logged nobody out
        with httpx.Client(timeout=60) as anon:
            _walk_app(walk, editor_app, server.editor_url, anon, "editor, logged out")
        with httpx.Client(timeout=60) as editor:
            server.login(editor, walk.admin)
            _walk_app(walk, editor_app, server.editor_url, editor, "editor, logged in")
            assert editor.get(f"{server.editor_url}/").status_code == 200
    finally:
        for app in (source_app, editor_app):
            app.state.engine.dispose()
    every = {(label, route) for label, app in _labelled(source_app, editor_app) for route, _, _ in _targets(app)}
    assert walk.reached == every
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log


def _labelled(source_app: FastAPI, editor_app: FastAPI) -> list[tuple[str, FastAPI]]:
    return [
        ("source, logged out", source_app),
        ("source, logged in", source_app),
        ("editor, logged out", editor_app),
        ("editor, logged in", editor_app),
    ]


def test_a_logged_in_editor_gets_real_pages_from_the_walk(walk: Walk) -> None:
    """The real ids reach the handlers themselves, not only their 404 pages."""
    server = walk.server
    with httpx.Client(timeout=60) as editor:
        server.login(editor, walk.admin)
        for path in (
            f"/sources/{walk.real['source_id']}",
            f"/items/{walk.real['item_id']}/download",
            f"/items/{walk.real['item_id']}/report",
            f"/items/{walk.real['item_id']}/preview",
            f"/sources/{walk.real['source_id']}/export",
        ):
            response = editor.get(f"{server.editor_url}{path}")
            assert response.status_code == 200, path
            _assert_hardened(response, path)
