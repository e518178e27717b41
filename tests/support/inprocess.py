"""In-process helpers: sessions on an instance's database, sources made through the intake, logins over TestClient.

The fixtures in tests/conftest.py (``db``, ``store``, ``make_source``,
``make_editor``, ``source_client``, ``editor_client``) are built from these.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session
from starlette.exceptions import StarletteDeprecationWarning

from app.db.models import Source
from app.db.session import make_engine, make_session_factory
from app.intake.ingest import FILES_FIELD, MESSAGE_FIELD, Limits, SealedItem, SubmissionIngest
from app.services import keys, sources, submissions
from app.settings import Settings
from app.storage import BlobStore
from tests.support import EditorAccount, csrf_token_in, multipart_body

# Starlette 1.10 would rather its TestClient ran on httpx2, and warns once, as
# it is imported, when only httpx is installed: the client the suite pins and
# uses everywhere else. The warning says nothing about the apps under test.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient as TestClient

# (file name, content), as a browser's file input sends them.
Upload = tuple[str, bytes]


@contextmanager
def session_on(settings: Settings) -> Iterator[Session]:
    """A session on the settings' database, its engine disposed afterwards."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@dataclass(frozen=True)
class MadeSource:
    source: Source
    codename: str

    @property
    def id(self) -> str:
        return self.source.id


@dataclass(frozen=True)
class MadeEditor:
    id: str
    account: EditorAccount


class SourceFactory(Protocol):
    """The ``make_source`` fixture."""

    def __call__(self, message: str = ..., files: Sequence[Upload] = ...) -> MadeSource: ...


class EditorFactory(Protocol):
    """The ``make_editor`` fixture."""

    def __call__(self, username: str | None = ..., *, admin: bool = ..., grant: bool = ...) -> MadeEditor: ...


def _limits(settings: Settings) -> Limits:
    return Limits(
        max_total_bytes=settings.max_submission_bytes,
        max_message_chars=settings.max_message_chars,
        max_files=settings.max_files_per_submission,
        max_strip_bytes=settings.max_strip_bytes,
    )


@contextmanager
def sealed_submission(
    *, session: Session, store: BlobStore, settings: Settings, message: str, files: Sequence[Upload]
) -> Iterator[list[SealedItem]]:
    """The envelopes the source app's intake makes of a browser's form; removed again if the block fails."""
    boundary = f"----buzon{secrets.token_hex(8)}"
    parts: list[tuple[str, str | None, bytes]] = [(MESSAGE_FIELD, None, message.encode())]
    parts += [(FILES_FIELD, name, content) for name, content in files]
    ingest = SubmissionIngest(
        boundary=boundary.encode(),
        newsroom_public_key=keys.active_public_key(session),
        instance_fingerprint=keys.instance_fingerprint(session),
        store=store,
        limits=_limits(settings),
    )
    try:
        ingest.feed(multipart_body(boundary, parts))
        yield ingest.finish()
    except BaseException:
        ingest.abort()
        raise


def create_source(
    *, session: Session, store: BlobStore, settings: Settings, message: str, files: Sequence[Upload] = ()
) -> MadeSource:
    """A new source with one submission (the message first, then the files), as the source app records it."""
    pepper = keys.load_pepper(settings.pepper_path)
    kdf = keys.codename_kdf(session)
    with sealed_submission(session=session, store=store, settings=settings, message=message, files=files) as items:
        codename = submissions.record_new_source_submission(session=session, items=items, pepper=pepper, kdf=kdf)
    found = sources.find_source(session=session, codename=codename, pepper=pepper, kdf=kdf)
    assert found is not None
    return MadeSource(found[0], codename)


def add_follow_up(
    *,
    session: Session,
    store: BlobStore,
    settings: Settings,
    source_id: str,
    message: str,
    files: Sequence[Upload] = (),
) -> None:
    """A further submission of a logged-in source."""
    with sealed_submission(session=session, store=store, settings=settings, message=message, files=files) as items:
        submissions.record_follow_up(session=session, items=items, source_id=source_id)


def try_log_in(client: TestClient, account: EditorAccount) -> bool:
    """Post the editor login form with passphrase and a fresh TOTP code; whether it let the editor in."""
    token = csrf_token_in(client.get("/login").text)
    data = {"username": account.username, "passphrase": account.passphrase, "otp": account.otp(), "csrf_token": token}
    response = client.post("/login", data=data)
    return bool(response.status_code == 303 and response.headers["location"] == "/")


def log_in(client: TestClient, account: EditorAccount) -> None:
    """Log in to the editor app, as the login form does."""
    assert try_log_in(client, account)
