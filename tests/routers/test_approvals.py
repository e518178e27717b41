"""Two admins to delete (issue 11, section 2): with more than one admin holding the key,
deleting a source or an editor is only asked for, and happens when another admin approves."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Approval, AuditEntry, Editor, Source
from app.main import create_editor_app
from app.services import custody, keys
from tests.support import EditorAccount, Instance, csrf_token_in
from tests.support.inprocess import EditorFactory, MadeEditor, SourceFactory, TestClient, try_log_in


def _post(client: TestClient, account: EditorAccount, path: str) -> int:
    client.cookies.clear()
    assert try_log_in(client, account)
    token = csrf_token_in(client.get("/approvals").text)
    status: int = client.post(path, data={"csrf_token": token}).status_code
    return status


def _exists(db: Session, model: type[Source] | type[Editor], row_id: str) -> bool:
    db.expire_all()
    return db.get(model, row_id) is not None


def _approval_ids(db: Session) -> list[str]:
    db.expire_all()
    return list(db.scalars(select(Approval.id)))


@pytest.fixture
def admins(make_editor: EditorFactory) -> tuple[MadeEditor, MadeEditor]:
    return make_editor("ana", admin=True), make_editor("bruno", admin=True)


def test_deleting_a_source_waits_for_a_second_admin(
    db: Session,
    instance: Instance,
    make_source: SourceFactory,
    editor_client: TestClient,
    admins: tuple[MadeEditor, MadeEditor],
) -> None:
    ana, bruno = admins
    source = make_source("a tip that someone wants gone")
    assert _post(editor_client, ana.account, f"/sources/{source.id}/delete") == 303
    assert _exists(db, Source, source.id)
    (approval_id,) = _approval_ids(db)
    # The one who asked cannot approve it.
    assert _post(editor_client, ana.account, f"/approvals/{approval_id}/approve") == 403
    assert _exists(db, Source, source.id)
    page = editor_client.get("/approvals").text
    assert source.source.designation in page
    assert f"/approvals/{approval_id}/approve" not in page
    assert _post(editor_client, bruno.account, f"/approvals/{approval_id}/approve") == 303
    assert not _exists(db, Source, source.id)
    assert _approval_ids(db) == []
    actions = {(e.actor, e.action) for e in db.scalars(select(AuditEntry))}
    assert {("ana", "asked to delete source"), ("bruno", "approved: delete source")} <= actions
    # The source's message leaves its custody tombstone, signed by the admin who carried it out.
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    last = max((e for e in custody.open_chain(db, newsroom_keys) if e is not None), key=lambda e: e.seq)
    assert (last.action, last.actor) == ("deleted", "bruno")
    assert custody.verify_chain(db, newsroom_keys).sound


def test_a_non_admin_may_ask_and_only_an_admin_may_approve(
    db: Session,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
    admins: tuple[MadeEditor, MadeEditor],
) -> None:
    ana, _ = admins
    carla = make_editor("carla")
    dario = make_editor("dario")
    source = make_source("another tip")
    assert _post(editor_client, carla.account, f"/sources/{source.id}/delete") == 303
    (approval_id,) = _approval_ids(db)
    assert _post(editor_client, dario.account, f"/approvals/{approval_id}/approve") == 403
    assert _post(editor_client, dario.account, f"/approvals/{approval_id}/withdraw") == 403
    assert _exists(db, Source, source.id)
    assert _post(editor_client, ana.account, f"/approvals/{approval_id}/approve") == 303
    assert not _exists(db, Source, source.id)


def test_deleting_an_editor_waits_too_and_a_request_can_be_withdrawn(
    db: Session, make_editor: EditorFactory, editor_client: TestClient, admins: tuple[MadeEditor, MadeEditor]
) -> None:
    ana, bruno = admins
    target = make_editor("elena")
    assert _post(editor_client, ana.account, f"/admin/editors/{target.id}/delete") == 303
    assert _exists(db, Editor, target.id)
    (approval_id,) = _approval_ids(db)
    assert _post(editor_client, ana.account, f"/approvals/{approval_id}/withdraw") == 303
    assert _approval_ids(db) == []
    assert _post(editor_client, ana.account, f"/admin/editors/{target.id}/delete") == 303
    (again,) = _approval_ids(db)
    assert _post(editor_client, bruno.account, f"/approvals/{again}/approve") == 303
    assert not _exists(db, Editor, target.id)


def test_with_one_admin_holding_the_key_deleting_needs_nobody_else(
    db: Session, make_source: SourceFactory, make_editor: EditorFactory, editor_client: TestClient
) -> None:
    ana = make_editor("ana", admin=True)
    make_editor("nora", admin=True, grant=False)  # an admin without the key cannot approve, so does not count
    source = make_source("a tip")
    assert _post(editor_client, ana.account, f"/sources/{source.id}/delete") == 303
    assert not _exists(db, Source, source.id)
    assert _approval_ids(db) == []


def test_the_setting_turns_approval_off(
    db: Session, instance: Instance, make_source: SourceFactory, admins: tuple[MadeEditor, MadeEditor]
) -> None:
    from fastapi.testclient import TestClient as Client

    ana, _ = admins
    source = make_source("a tip")
    app = create_editor_app(instance.settings.model_copy(update={"second_admin_approval": False}))
    try:
        with Client(app, base_url="http://127.0.0.1:8081", follow_redirects=False) as client:
            assert _post(client, ana.account, f"/sources/{source.id}/delete") == 303
    finally:
        app.state.engine.dispose()
    assert not _exists(db, Source, source.id)
