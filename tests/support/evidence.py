"""A real evidence package for the tests: a tip received, handled, anchored by a real authority, packaged."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.models import EvidenceLeaf
from app.evidence import timestamps
from app.services import keys
from app.services.anchors import TimestampAuthority, anchor_past_days, sign_anchors
from app.services.evidence_package import write_package
from app.storage import BlobStore
from tests.support import Instance
from tests.support.inprocess import EditorFactory, SourceFactory, TestClient, log_in
from tests.support.tsa import RunningAuthority

FILE = b"%PDF-1.4 the contract, as the source sent it"
EDITOR = "editor-zq7x"


def build_package(
    tmp_path: Path,
    *,
    db: Session,
    store: BlobStore,
    instance: Instance,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
) -> tuple[Path, Path]:
    """A message and a file that an editor viewed and downloaded, anchored yesterday and signed.

    Returns the package's tar archive and the authority's CA certificate.
    """
    made = make_source("the message", files=[("contract.pdf", FILE)])
    log_in(editor_client, make_editor(EDITOR).account)
    page = editor_client.get(f"/sources/{made.id}").text
    (download,) = re.findall(r'href="(/items/[0-9a-f]{32}/download)"', page)
    assert editor_client.get(download).content == FILE
    db.execute(update(EvidenceLeaf).values(day=utc_today() - dt.timedelta(days=1)))
    db.commit()
    running = RunningAuthority(tmp_path / "tsa")
    try:
        roots = timestamps.load_roots(running.authority.ca_file.read_bytes())
        authority = TimestampAuthority(url=running.authority.url, roots=roots, proxy=None, timeout_seconds=30)
        assert anchor_past_days(db, authority=authority, today=utc_today()).anchored
    finally:
        running.close()
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    sign_anchors(db, newsroom_keys=newsroom_keys)
    archive = tmp_path / "package.tar"
    ca = running.authority.ca_file
    with archive.open("xb") as out:
        count = write_package(
            session=db, store=store, source_id=made.id, newsroom_keys=newsroom_keys, out=out, tsa_ca=ca.read_bytes()
        )
    assert count == 2
    return archive, ca
