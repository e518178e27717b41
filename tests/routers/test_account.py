"""An editor changes their own passphrase or phone: the key stays, the old factor and every login end."""

from __future__ import annotations

import dataclasses
import re
import time

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto
from app.db.models import AuditEntry, Editor
from tests.support import csrf_token_in
from tests.support.inprocess import EditorFactory, MadeEditor, TestClient, log_in, try_log_in

NEW = "seven random words make a fine passphrase"


def _change(client: TestClient, current: str, new: str, confirm: str | None = None) -> int:
    token = csrf_token_in(client.get("/account").text)
    form = {"passphrase": current, "new_passphrase": new, "new_passphrase_confirm": new if confirm is None else confirm}
    status: int = client.post("/account/passphrase", data={**form, "csrf_token": token}).status_code
    return status


@pytest.fixture
def ana(make_editor: EditorFactory, editor_client: TestClient) -> MadeEditor:
    made = make_editor("ana")
    log_in(editor_client, made.account)
    return made


def _row(db: Session, editor_id: str) -> Editor:
    db.expire_all()
    row = db.get(Editor, editor_id)
    assert row is not None
    return row


def test_a_new_passphrase_locks_the_same_key_and_ends_every_login(
    db: Session, editor_client: TestClient, ana: MadeEditor
) -> None:
    before = _row(db, ana.id)
    old_key = crypto.unwrap_secret_key(before.wrapped_secret_key, ana.account.passphrase)
    assert _change(editor_client, ana.account.passphrase, NEW) == 303
    # This login ended too: the desk sends it back to the login page.
    assert editor_client.get("/").status_code == 303
    after = _row(db, ana.id)
    assert crypto.unwrap_secret_key(after.wrapped_secret_key, NEW) == old_key
    with pytest.raises(crypto.DecryptionError):
        crypto.unwrap_secret_key(after.wrapped_secret_key, ana.account.passphrase)
    assert not try_log_in(editor_client, ana.account)
    assert try_log_in(editor_client, dataclasses.replace(ana.account, passphrase=NEW))
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.actor == "ana"))]
    assert "changed passphrase" in actions


@pytest.mark.parametrize(
    ("current", "new", "confirm", "status"),
    [
        ("not my passphrase at all", NEW, None, 401),
        (None, NEW, NEW + " typo", 400),
        (None, "too short", None, 400),
        (None, "ana ana ana ana ana ana ana", None, 400),  # holds the username
    ],
)
def test_a_refused_change_changes_nothing(
    db: Session,
    editor_client: TestClient,
    ana: MadeEditor,
    current: str | None,
    new: str,
    confirm: str | None,
    status: int,
) -> None:
    wrapped = _row(db, ana.id).wrapped_secret_key
    assert _change(editor_client, current or ana.account.passphrase, new, confirm) == status
    assert _row(db, ana.id).wrapped_secret_key == wrapped
    assert editor_client.get("/").status_code == 200  # still logged in


def _new_secret_on(page: str) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert match is not None, page
    return match.group(1).replace(" ", "")


def _code(secret: str) -> str:
    return str(pyotp.TOTP(secret).generate_otp(int(time.time()) // 30))


def _start(client: TestClient, passphrase: str) -> tuple[int, str]:
    token = csrf_token_in(client.get("/account").text)
    response = client.post("/account/totp", data={"passphrase": passphrase, "csrf_token": token})
    return response.status_code, response.text


def _confirm(client: TestClient, otp: str) -> int:
    token = csrf_token_in(client.get("/account").text)
    status: int = client.post("/account/totp/confirm", data={"otp": otp, "csrf_token": token}).status_code
    return status


def test_a_new_phone_replaces_the_old_one_and_ends_every_login(
    db: Session, editor_client: TestClient, ana: MadeEditor
) -> None:
    status, page = _start(editor_client, ana.account.passphrase)
    assert status == 200
    secret = _new_secret_on(page)
    assert secret != ana.account.totp_secret
    code = _code(secret)
    assert _confirm(editor_client, code) == 303
    assert editor_client.get("/").status_code == 303  # logged out, this login too
    # The old phone's codes no longer log in; the new phone's do (but not the code that confirmed it).
    assert not try_log_in(editor_client, ana.account)
    new_phone = dataclasses.replace(ana.account, totp_secret=secret)
    token = csrf_token_in(editor_client.get("/login").text)
    reused = {"username": "ana", "passphrase": ana.account.passphrase, "otp": code, "csrf_token": token}
    assert editor_client.post("/login", data=reused).status_code == 401
    assert try_log_in(editor_client, new_phone)
    actions = [e.action for e in db.scalars(select(AuditEntry).where(AuditEntry.actor == "ana"))]
    assert "replaced two-factor" in actions


def test_a_wrong_passphrase_or_code_keeps_the_old_phone(
    db: Session, editor_client: TestClient, ana: MadeEditor
) -> None:
    record = _row(db, ana.id).sealed_totp_secret
    status, _ = _start(editor_client, "not my passphrase")
    assert status == 401
    assert _confirm(editor_client, "123456") == 303  # nothing pending: back to the account page
    status, page = _start(editor_client, ana.account.passphrase)
    secret = _new_secret_on(page)
    wrong = "000000" if _code(secret) != "000000" else "111111"
    assert _confirm(editor_client, wrong) == 400
    assert _row(db, ana.id).sealed_totp_secret == record
    assert editor_client.get("/").status_code == 200  # still logged in
