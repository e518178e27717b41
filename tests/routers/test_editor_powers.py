"""Only an editor holding the newsroom key changes anything: a revoked or never-granted one can do nothing.

Every state-changing route of the editor app is tried by three admins: one
granted the key, one never granted it (enrolled, then left waiting), and one
granted and then revoked. The whole database and the store are compared before
and after each try; only the granted admin may change them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Approval, Base, Note, Reply, Tag
from app.main import create_editor_app
from app.services import approvals, editors, invites, keys, replies, triage
from app.storage import BlobStore
from tests.support import EditorAccount, Instance, csrf_token_in, stored_files
from tests.support.inprocess import EditorFactory, SourceFactory, TestClient, try_log_in
from tests.support.routes import post_paths

# POST routes that change nothing of the newsroom's (an editor's own passphrase is
# theirs to change, granted or not), or come before any login.
NEEDS_NO_KEY = {
    "/login",
    "/logout",
    "/account/key-file",
    "/account/passphrase",
    "/account/totp",
    "/account/totp/confirm",
    "/invite/{token}",
    "/invite/{token}/confirm",
}


@dataclass(frozen=True)
class World:
    """One source with a message, a file, a tag, a note and a reply; a bystander editor; a pending invite."""

    source_id: str
    item_id: str
    tag_id: str
    note_id: str
    reply_id: str
    bystander_id: str
    granted_admin_id: str
    approval_id: str  # ana asked to delete a second source


Form = tuple[str, dict[str, str]]

ROUTES: dict[str, Callable[[World], Form]] = {
    "/sources/{source_id}/status": lambda w: (f"/sources/{w.source_id}/status", {"status": "verified"}),
    "/sources/{source_id}/star": lambda w: (f"/sources/{w.source_id}/star", {"starred": "1"}),
    "/sources/{source_id}/assign": lambda w: (f"/sources/{w.source_id}/assign", {"assignee": w.granted_admin_id}),
    "/sources/{source_id}/hide": lambda w: (f"/sources/{w.source_id}/hide", {"hidden": "1"}),
    "/sources/{source_id}/tags": lambda w: (f"/sources/{w.source_id}/tags", {"name": "cartel"}),
    "/sources/{source_id}/tags/{tag_id}/remove": lambda w: (f"/sources/{w.source_id}/tags/{w.tag_id}/remove", {}),
    "/sources/{source_id}/notes": lambda w: (f"/sources/{w.source_id}/notes", {"text": "call them back"}),
    "/sources/{source_id}/notes/{note_id}/delete": lambda w: (
        f"/sources/{w.source_id}/notes/{w.note_id}/delete",
        {},
    ),
    "/sources/{source_id}/reply": lambda w: (f"/sources/{w.source_id}/reply", {"reply": "Meet us at the plaza."}),
    "/sources/{source_id}/replies/{reply_id}/delete": lambda w: (
        f"/sources/{w.source_id}/replies/{w.reply_id}/delete",
        {},
    ),
    "/items/{item_id}/delete": lambda w: (f"/items/{w.item_id}/delete", {}),
    "/sources/{source_id}/delete": lambda w: (f"/sources/{w.source_id}/delete", {}),
    "/admin/invites": lambda w: ("/admin/invites", {"username": "xavier", "admin": "1"}),
    "/admin/invites/cancel": lambda w: ("/admin/invites/cancel", {"username": "yolanda"}),
    "/admin/editors/{editor_id}/grant": lambda w: (f"/admin/editors/{w.bystander_id}/grant", {}),
    "/admin/editors/{editor_id}/revoke": lambda w: (f"/admin/editors/{w.granted_admin_id}/revoke", {}),
    "/admin/editors/{editor_id}/delete": lambda w: (f"/admin/editors/{w.bystander_id}/delete", {}),
    "/admin/keys/rotate": lambda w: ("/admin/keys/rotate", {}),
    "/approvals/{approval_id}/approve": lambda w: (f"/approvals/{w.approval_id}/approve", {}),
    "/approvals/{approval_id}/withdraw": lambda w: (f"/approvals/{w.approval_id}/withdraw", {}),
}


def test_the_table_names_every_state_changing_route(instance: Instance) -> None:
    app = create_editor_app(instance.settings)
    try:
        posts = post_paths(app)
    finally:
        app.state.engine.dispose()
    assert posts - NEEDS_NO_KEY == set(ROUTES)


def _world(db: Session, instance: Instance, make_source: SourceFactory, make_editor: EditorFactory) -> World:
    made = make_source(message="a tip about the mayor", files=[("acta.txt", b"minutes of the meeting")])
    source = made.source
    (item,) = [i for s in source.submissions for i in s.items if i.kind == "file"]
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    public_key = keys.active_public_key(db)
    triage.add_tag(
        session=db,
        source=source,
        name="mayor",
        actor="setup",
        newsroom_keys=newsroom_keys,
        newsroom_public_key=public_key,
    )
    triage.add_note(session=db, source=source, text="sounds credible", author="setup", newsroom_public_key=public_key)
    store = BlobStore(instance.settings.store_dir)
    replies.send_reply(
        session=db, store=store, source=source, text="Thank you.", newsroom_public_key=public_key, author="setup"
    )
    invites.create_invite(session=db, username="yolanda", is_admin=False, actor="setup")
    bystander = make_editor("zoe", grant=False)
    granted = make_editor("ana", admin=True)
    other = make_source(message="a second tip").source
    approvals.request(
        db, action=approvals.DELETE_SOURCE, target_id=other.id, by=approvals.Actor(granted.id, "ana", is_admin=True)
    )
    return World(
        source_id=source.id,
        item_id=item.id,
        tag_id=db.scalars(select(Tag.id)).one(),
        note_id=db.scalars(select(Note.id)).one(),
        reply_id=db.scalars(select(Reply.id)).one(),
        bystander_id=bystander.id,
        granted_admin_id=granted.id,
        approval_id=db.scalars(select(Approval.id)).one(),
    )


Snapshot = tuple[dict[str, list[str]], list[str]]


def _snapshot(instance: Instance, db: Session) -> Snapshot:
    """Every row of every table, and every file of the store: what a change would show in."""
    db.expire_all()
    rows = {
        table.name: sorted(repr(tuple(row)) for row in db.execute(select(table)))
        for table in Base.metadata.sorted_tables
    }
    files = sorted(str(p.relative_to(instance.settings.store_dir)) for p in stored_files(instance.settings))
    return rows, files


def _post(client: TestClient, path: str, data: dict[str, str]) -> int:
    token = csrf_token_in(client.get("/login").text)
    status: int = client.post(path, data={**data, "csrf_token": token}).status_code
    return status


def _actor(kind: str, db: Session, make_editor: EditorFactory) -> EditorAccount:
    if kind == "never granted":
        return make_editor("nora", admin=True, grant=False).account
    made = make_editor("rita", admin=True)
    if kind == "revoked":
        editors.revoke_access(session=db, editor_id=made.id, actor="setup")
    return made.account


@pytest.mark.parametrize("kind", ["revoked", "never granted"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_editor_without_the_key_changes_nothing(
    instance: Instance,
    db: Session,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
    route: str,
    kind: str,
) -> None:
    world = _world(db, instance, make_source, make_editor)
    actor = _actor(kind, db, make_editor)
    try_log_in(editor_client, actor)
    before = _snapshot(instance, db)
    path, data = ROUTES[route](world)
    status = _post(editor_client, path, data)
    assert _snapshot(instance, db) == before, f"{kind} editor changed something through {route} ({status})"
    assert status in (303, 403), status
    if status == 303:
        assert editor_client.cookies.get("buzon_editor") is None or kind == "never granted"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_an_editor_holding_the_key_changes_something(
    instance: Instance,
    db: Session,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
    route: str,
) -> None:
    world = _world(db, instance, make_source, make_editor)
    actor = _actor("granted", db, make_editor)
    assert try_log_in(editor_client, actor)
    before = _snapshot(instance, db)
    path, data = ROUTES[route](world)
    status = _post(editor_client, path, data)
    assert status in (200, 303), status
    assert _snapshot(instance, db) != before, route


def test_a_revoked_editor_cannot_log_in_and_is_no_longer_admin(
    instance: Instance, db: Session, make_editor: EditorFactory, editor_client: TestClient
) -> None:
    made = make_editor("rita", admin=True)
    editors.revoke_access(session=db, editor_id=made.id, actor="setup")
    assert not try_log_in(editor_client, made.account)
    (account,) = [e for e in editors.list_editors(db) if e.id == made.id]
    assert not account.is_admin
    assert account.grants == []
