"""Reading is on the record too: by day, once a day per editor and thing, and never what was read or sought."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEntry
from tests.support.inprocess import EditorFactory, SourceFactory, TestClient, log_in


def _entries(db: Session) -> list[tuple[str, str, str]]:
    db.expire_all()
    return sorted((e.actor, e.action, e.target) for e in db.scalars(select(AuditEntry)) if e.actor == "ana")


def test_views_downloads_reports_previews_and_searches_are_audited_without_content(
    db: Session, editor_client: TestClient, make_source: SourceFactory, make_editor: EditorFactory
) -> None:
    made = make_source("the harbour master takes bribes", files=[("ledger.txt", b"secret ledger")])
    designation = made.source.designation
    (item_id,) = [i.id for s in made.source.submissions for i in s.items if i.kind == "file"]
    log_in(editor_client, make_editor("ana").account)
    before = {entry for entry in _entries(db) if entry[1] == "logged in"}
    for _ in range(2):  # the second round adds nothing: once a day is enough to say it happened
        assert editor_client.get(f"/sources/{made.id}").status_code == 200
        assert editor_client.get(f"/items/{item_id}/download").status_code == 200
        assert editor_client.get(f"/items/{item_id}/report").status_code == 200
        editor_client.get(f"/items/{item_id}/preview")  # a text file has no preview: 404, still a read
        assert editor_client.get("/search", params={"q": "harbour"}).status_code == 200
    assert set(_entries(db)) - before == {
        ("ana", "source view", designation),
        ("ana", "item download", designation),
        ("ana", "item report", designation),
        ("ana", "item preview", designation),
        ("ana", "search", ""),
    }
    assert len(_entries(db)) == len(set(_entries(db)))
    logged = " ".join(" ".join(entry) for entry in _entries(db))
    for content in ("harbour", "bribes", "ledger", "secret"):
        assert content not in logged
