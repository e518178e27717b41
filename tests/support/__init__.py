"""Test helpers: fast settings, an initialised instance, a real server handle."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import pyotp
from pydantic import SecretStr
from sqlalchemy.orm import Session

from app.crypto import EnvelopeMetadata
from app.db.migrate import upgrade_database
from app.db.session import make_engine, make_session_factory
from app.services import editors, keys
from app.settings import Settings
from app.storage import BlobStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Fast KDFs, and a small pool of store slots (each test's store makes its own).
TEST_SETTINGS = {
    "insecure_fast_kdf": True,
    "store_pool": 32,
    "editor_kdf_time_cost": 1,
    "editor_kdf_memory_kib": 8,
    "codename_kdf_time_cost": 1,
    "codename_kdf_memory_kib": 8,
}


@dataclass
class EditorAccount:
    username: str
    passphrase: str
    totp_secret: str
    _last_counter: int = field(default=0, repr=False)

    def otp(self) -> str:
        """A TOTP code not used before: codes are single-use, so step forward."""
        clock = time.time()
        now = int(clock) // 30
        # The server accepts one step either side of its own. The previous step
        # is usable only if no 30 s boundary can pass before the server checks.
        earliest = now - 1 if (now + 1) * 30 - clock > 5 else now
        counter = max(earliest, self._last_counter + 1)
        if counter > now + 1:
            time.sleep((counter - 1) * 30 - time.time() + 0.5)
        self._last_counter = counter
        return pyotp.TOTP(self.totp_secret).generate_otp(counter)


@dataclass
class Instance:
    settings: Settings
    recovery_secret: str

    def add_editor(
        self, username: str | None = None, *, admin: bool = False, grant: bool = True, session: Session | None = None
    ) -> EditorAccount:
        """A new editor, through the service; on ``session`` if given (the ``db`` fixture), else on one of its own."""
        if session is not None:
            return self._add_editor(session, username, admin=admin, grant=grant)
        engine = make_engine(self.settings.resolved_database_url)
        try:
            with make_session_factory(engine)() as own:
                return self._add_editor(own, username, admin=admin, grant=grant)
        finally:
            engine.dispose()

    def _add_editor(self, session: Session, username: str | None, *, admin: bool, grant: bool) -> EditorAccount:
        username = username or f"editor-{secrets.token_hex(4)}"
        passphrase = f"test passphrase {secrets.token_hex(8)}"
        newsroom_keys = keys.open_with_recovery(session=session, recovery_secret=self.recovery_secret)
        totp_secret = editors.add_editor(
            session=session,
            username=username,
            passphrase=passphrase,
            is_admin=admin,
            kdf=self.settings.editor_kdf,
            newsroom_keys=newsroom_keys if grant else None,
        )
        return EditorAccount(username, passphrase, totp_secret)


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    """Fast-KDF settings for ``data_dir``, with SQLite inside it unless ``database_url`` is among the overrides.

    Tests take the ``make_settings`` fixture instead, which knows ``pytest --database``.
    """
    return Settings(**{"data_dir": data_dir, **TEST_SETTINGS, **overrides})  # type: ignore[arg-type]


class SettingsFactory(Protocol):
    """The ``make_settings`` fixture: settings for a data dir, on the session's database choice."""

    def __call__(self, data_dir: Path, /, **overrides: object) -> Settings: ...


def uses_sqlite(settings: Settings) -> bool:
    return settings.resolved_database_url.startswith("sqlite")


def initialise(settings: Settings) -> Instance:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    BlobStore(settings.store_dir, settings.store_pool).fill_pool()  # as `buzon init` does
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    with make_session_factory(engine)() as session:
        secret = keys.initialise_instance(
            session=session, pepper_path=settings.pepper_path, codename_kdf=settings.codename_kdf
        )
    engine.dispose()
    return Instance(settings, secret)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("buzon serve exited during start-up")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open")


def spawn_server(
    settings: Settings,
    tmp_dir: Path,
    log_path: Path,
    ports: tuple[int, int] | None = None,
    python: Path | str = sys.executable,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start ``buzon serve`` on ``ports`` (source, editor) or free ones; return the process and both base URLs.

    ``python`` is the interpreter that runs it: this venv's, or one Buzón was installed into
    (then give a ``cwd`` outside the checkout, since ``python -m`` imports from there first).
    """
    source_port, editor_port = ports or (free_port(), free_port())
    command = [str(python), "-m", "app", "serve", "--source-port", str(source_port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--editor-port", str(editor_port)],
            env=server_env(settings, tmp_dir),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(source_port, process)
        wait_for_port(editor_port, process)
    except BaseException:
        stop_server(process)
        raise
    return process, f"http://127.0.0.1:{source_port}", f"http://127.0.0.1:{editor_port}"


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LiveServer:
    instance: Instance
    source_url: str
    editor_url: str
    tmp_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def data_dir(self) -> Path:
        return self.instance.settings.data_dir

    def submit_url(self, client: httpx.Client, page: str = "/submit") -> str:
        """The submission form's action, CSRF token included, as a browser would find it."""
        form = client.get(f"{self.source_url}{page}")
        match = re.search(r'<form method="post" action="([^"]+)" enctype="multipart/form-data"', form.text)
        assert match is not None, form.text
        return f"{self.source_url}{html.unescape(match.group(1))}"

    def post_form(
        self, client: httpx.Client, base: str, page: str, action: str, data: dict[str, str]
    ) -> httpx.Response:
        """Load ``page``, then post ``data`` to ``action`` with that page's CSRF token."""
        token = csrf_token_in(client.get(f"{base}{page}").text)
        return client.post(f"{base}{action}", data={**data, "csrf_token": token})

    def editor_login(self, client: httpx.Client, account: EditorAccount, otp: str | None = None) -> httpx.Response:
        data = {"username": account.username, "passphrase": account.passphrase, "otp": otp or account.otp()}
        return self.post_form(client, self.editor_url, "/login", "/login", data)

    def login(self, client: httpx.Client, account: EditorAccount) -> None:
        response = self.editor_login(client, account)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/"


def csrf_token_in(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None, page
    return html.unescape(match.group(1))


def server_env(settings: Settings, tmp_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUZON_")}
    for key, value in settings.model_dump(exclude_none=True).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        # Lists go as JSON, which is how pydantic-settings reads complex values.
        env[f"BUZON_{key.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    env["TMPDIR"] = str(tmp_dir)
    return env


ServerFactory = Callable[[Instance], LiveServer]


def bodies_in(store_dir: Path) -> list[Path]:
    """Every body in a ciphertext store, complete or half-written: its non-empty files.

    Empty files are free slots (docs/storage.md), which hold nothing.
    """
    return [p for p in store_dir.rglob("*") if p.is_file() and p.stat().st_size > 0]


def stored_files(settings: Settings) -> list[Path]:
    """Every body in the instance's ciphertext store."""
    return bodies_in(settings.store_dir)


def row_counts(settings: Settings) -> dict[str, int]:
    from sqlalchemy import func, select

    from app.db.models import Item, Source, Submission

    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            return {
                model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in (Source, Submission, Item)
            }
    finally:
        engine.dispose()


def multipart_body(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """Encode (field name, file name or None, content) parts as a browser would."""
    out = bytearray()
    for name, filename, content in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def submit_tip(
    server: LiveServer, client: httpx.Client, message: str, files: list[tuple[str, bytes]] | None = None
) -> httpx.Response:
    """Post the submission form as a browser would (multipart, CSRF token from the form)."""
    return post_multipart(client, server.submit_url(client), {"message": message}, files)


def post_multipart(
    client: httpx.Client, url: str, fields: dict[str, str], files: list[tuple[str, bytes]] | None = None
) -> httpx.Response:
    """A multipart POST even without files, which httpx would otherwise url-encode."""
    boundary = f"----buzon{secrets.token_hex(8)}"
    parts: list[tuple[str, str | None, bytes]] = [(k, None, v.encode()) for k, v in fields.items()]
    parts += [("files", name, content) for name, content in files or []]
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return client.post(url, content=multipart_body(boundary, parts), headers=headers)


def codename_in(page: str) -> str:
    match = re.search(r'id="codename">([^<]+)<', page)
    assert match is not None, page
    return html.unescape(match.group(1))


# (kind, file name or "", content): one envelope, its body fully authenticated.
StoredItem = tuple[str, str, bytes]


def open_every_submission(settings: Settings, recovery_secret: str) -> list[list[tuple[StoredItem, EnvelopeMetadata]]]:
    """Every submission's items with their sealed metadata, as stored; any damage raises."""
    from sqlalchemy import select

    from app import crypto
    from app.db.models import Submission

    engine = make_engine(settings.resolved_database_url)
    store = BlobStore(settings.store_dir)
    try:
        with make_session_factory(engine)() as session:
            newsroom_keys = keys.open_with_recovery(session=session, recovery_secret=recovery_secret)
            submissions = []
            for submission in session.scalars(select(Submission)):
                items = []
                for item in submission.items:
                    data_key = crypto.open_capsule(item.capsule, newsroom_keys)
                    metadata = crypto.open_metadata(data_key, item.sealed_metadata, owner=None)
                    with store.open(item.blob_name) as body:
                        content = b"".join(crypto.read_body(data_key, body, metadata.size))
                    items.append(((item.kind, metadata.name, content), metadata))
                submissions.append(items)
            return submissions
    finally:
        engine.dispose()


def decrypt_every_submission(settings: Settings, recovery_secret: str) -> list[list[StoredItem]]:
    """Decrypt every submission with the newsroom keys, as stored; any damage raises."""
    opened = open_every_submission(settings, recovery_secret)
    return [[item for item, _ in submission] for submission in opened]


def assert_database_and_store_sound(settings: Settings) -> None:
    """The database passes its checks, and the store holds exactly the bodies rows name."""
    from sqlalchemy import select, text

    from app.db.models import Item, Reply, Source, Submission

    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            if uses_sqlite(settings):
                assert connection.execute(text("PRAGMA integrity_check")).scalar() == "ok"
                assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
        with make_session_factory(engine)() as session:
            # No source without a submission, no submission without an item.
            assert all(source.submissions for source in session.scalars(select(Source)))
            assert all(submission.items for submission in session.scalars(select(Submission)))
            recorded = set(session.scalars(select(Item.blob_name))) | set(session.scalars(select(Reply.blob_name)))
    finally:
        engine.dispose()
    on_disk = {p.name for p in stored_files(settings)}
    assert on_disk == recorded, "orphaned or missing ciphertext"


def translated(locale: str, message: str) -> str:
    """``message`` as the shipped catalog of ``locale`` has it (English as written)."""
    from babel.messages.pofile import read_po

    from app.web.i18n import TRANSLATIONS_DIR

    if locale == "en":
        return message
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as f:
        entry = read_po(f).get(message)
    assert entry is not None, message
    assert entry.string, message
    return str(entry.string)


def migration_revisions() -> list[str]:
    """Every Alembic revision id, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.db.migrate import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]


def raw_http(url: str, request: bytes) -> bytes:
    """Send ``request`` as it is to the server at ``url``, stop sending, and return the whole answer."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw:
        raw.sendall(request)
        raw.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    return answer
