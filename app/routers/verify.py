"""Verification aids for one file: its metadata report and a safe preview.

The file is decrypted into memory only (up to MAX_INSPECT_BYTES), handed to a
sandboxed worker through a pipe (app/media/sandbox.py) and dropped; nothing
of it is written to disk, and no parser runs in this process. Previews are images
re-encoded on the server as PNG, so the browser never renders what the source
sent.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app import crypto
from app.db.models import Item
from app.deps import CurrentEditor, DbDep, SandboxDep, StoreDep, TemplatesDep
from app.errors import NotFound
from app.media.findings import MetadataReport
from app.services import audit, custody, submissions
from app.storage import BlobStore

# Larger files are reported from their encrypted metadata only.
MAX_INSPECT_BYTES = 64 * 1024 * 1024

router = APIRouter()
# Each read's line in the audit log, and the action it puts on the item's custody record.
CUSTODY_ACTIONS = {"item report": "reported", "item preview": "previewed"}


def _open_in_memory(
    db: DbDep, store: BlobStore, item_id: str, editor: CurrentEditor, action: str
) -> tuple[crypto.EnvelopeMetadata, bytes | None]:
    metadata, chunks = submissions.open_item_stream(
        session=db, store=store, item_id=item_id, newsroom_keys=editor.newsroom_keys
    )
    audit.record_read(db, actor=editor.username, action=action, target=audit.item_target(db, item_id))
    custody.record(db, editor, [db.get_one(Item, item_id)], CUSTODY_ACTIONS[action])
    if metadata.kind != "file" or metadata.size > MAX_INSPECT_BYTES:
        return metadata, None
    return metadata, b"".join(chunks)


@router.get("/items/{item_id}/report", response_class=HTMLResponse)
async def report(
    request: Request,
    item_id: str,
    editor: CurrentEditor,
    db: DbDep,
    store: StoreDep,
    sandbox: SandboxDep,
    templates: TemplatesDep,
) -> Response:
    def build() -> tuple[crypto.EnvelopeMetadata, MetadataReport | None, bool]:
        metadata, data = _open_in_memory(db, store, item_id, editor, "item report")
        if data is None:
            return metadata, None, False
        # Parsed by the sandbox's worker, never here: this process holds the editor's keys.
        found, previewable = sandbox.report(data, metadata.type, metadata.name)
        return metadata, found, previewable

    metadata, found, previewable = await to_thread.run_sync(build)
    context = {
        "editor": editor,
        "item_id": item_id,
        "metadata": metadata,
        "report": found,
        "previewable": previewable,
        "max_mib": MAX_INSPECT_BYTES // (1024 * 1024),
    }
    return templates.TemplateResponse(request, "item_report.html", context)


@router.get("/items/{item_id}/preview")
async def preview(item_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep, sandbox: SandboxDep) -> Response:
    def build() -> bytes | None:
        _, data = _open_in_memory(db, store, item_id, editor, "item preview")
        return None if data is None else sandbox.preview(data)

    png = await to_thread.run_sync(build)
    if png is None:
        raise NotFound()
    # Our own PNG, shown inline; nosniff and the CSP come from the security middleware.
    return Response(png, media_type="image/png", headers={"Content-Disposition": "inline; filename=preview.png"})
