"""Two ``buzon serve`` processes on one data dir and one database, taking tips at once.

This is how several source-interface processes share one installation
(docs/postgresql.md): every tip must arrive exactly once and decrypt.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select

from app.db.models import Item, Source, Submission
from app.services import keys, submissions
from app.storage import BlobStore
from app.web.csrf import load_or_create_secret
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    codename_in,
    post_multipart,
    stored_files,
    submit_tip,
)
from tests.support.desk import database, source_login

TIPS = 40
FOLLOW_UPS = 10
WORKERS = 8


@dataclass
class Sent:
    message: str
    file_name: str
    content: bytes


def _sent(label: str) -> Sent:
    marker = secrets.token_hex(8)
    return Sent(f"{label} {marker}", f"{label}-{marker}.bin", secrets.token_bytes(20_000))


def _new_tip(server: LiveServer, sent: Sent) -> str:
    with httpx.Client(timeout=120) as browser:
        response = submit_tip(server, browser, sent.message, [(sent.file_name, sent.content)])
        assert response.status_code == 200, response.text
        return codename_in(response.text)


def _follow_up(server: LiveServer, codename: str, sent: Sent) -> None:
    with httpx.Client(timeout=120) as browser:
        source_login(server, browser, codename)
        url = server.submit_url(browser, "/home")
        response = post_multipart(browser, url, {"message": sent.message}, [(sent.file_name, sent.content)])
        assert response.status_code == 200, response.text


def _everything_decrypted(server: LiveServer) -> list[tuple[str, str, str, bytes]]:
    """(source id, kind, message text or file name, body) of every item, opened with the recovery secret."""
    opened = []
    store = BlobStore(server.instance.settings.store_dir)
    with database(server) as session:
        newsroom_keys = keys.open_with_recovery(session=session, recovery_secret=server.instance.recovery_secret)
        for source in session.scalars(select(Source)):
            for submission in submissions.open_source_submissions(
                session=session, store=store, source=source, newsroom_keys=newsroom_keys
            ):
                for item in submission.items:
                    metadata, chunks = submissions.open_item_stream(
                        session=session, store=store, item_id=item.id, newsroom_keys=newsroom_keys
                    )
                    body = b"".join(chunks)
                    label = item.text if item.kind == "message" else metadata.name
                    assert label is not None
                    opened.append((source.id, item.kind, label, body))
    return opened


def test_tips_sent_through_two_processes_at_once_all_arrive_once_and_decrypt(
    instance: Instance, server_factory: ServerFactory
) -> None:
    servers = [server_factory(instance), server_factory(instance)]
    first = [_sent("tip") for _ in range(TIPS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        codenames = list(pool.map(lambda n: _new_tip(servers[n % 2], first[n]), range(TIPS)))
    assert len(set(codenames)) == TIPS

    # A source comes back through the other process: pepper, CSRF key and rows are shared.
    later = [_sent("follow-up") for _ in range(FOLLOW_UPS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda n: _follow_up(servers[(n + 1) % 2], codenames[n], later[n]), range(FOLLOW_UPS)))

    with database(servers[0]) as session:
        counts = {
            model: session.scalar(select(func.count()).select_from(model)) for model in (Source, Submission, Item)
        }
    assert counts == {Source: TIPS, Submission: TIPS + FOLLOW_UPS, Item: 2 * (TIPS + FOLLOW_UPS)}
    assert len(stored_files(instance.settings)) == 2 * (TIPS + FOLLOW_UPS)

    opened = _everything_decrypted(servers[1])
    by_source: dict[str, set[tuple[str, str, bytes]]] = {}
    for source_id, kind, label, body in opened:
        by_source.setdefault(source_id, set()).add((kind, label, body))
    expected = []
    for n, sent in enumerate(first):
        tips = [sent, later[n]] if n < FOLLOW_UPS else [sent]
        items = {(kind, label, body) for s in tips for kind, label, body in _items(s)}
        expected.append(items)
    assert sorted(map(sorted, by_source.values())) == sorted(map(sorted, expected))
    for server in servers:
        assert server.process.poll() is None
        assert "Traceback" not in Path(server.log_path).read_text()


def _items(sent: Sent) -> list[tuple[str, str, bytes]]:
    return [("message", sent.message, sent.message.encode()), ("file", sent.file_name, sent.content)]


def test_processes_starting_at_once_on_a_fresh_data_dir_agree_on_one_csrf_key(tmp_path: Path) -> None:
    path = tmp_path / "csrf.key"
    with ThreadPoolExecutor(WORKERS) as pool:
        found = set(pool.map(lambda _: load_or_create_secret(path), range(4 * WORKERS)))
    assert found == {path.read_bytes()}
    assert [p.name for p in tmp_path.iterdir()] == ["csrf.key"]
    assert path.stat().st_mode & 0o077 == 0
