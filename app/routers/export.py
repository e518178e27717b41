"""Editor downloads for offline work: a source's encrypted bundle and the editor's key file."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from app.deps import (
    CSRF_FIELD,
    CurrentEditor,
    DbDep,
    KdfGateDep,
    LoginThrottleDep,
    SameOrigin,
    SessionFactoryDep,
    StoreDep,
    TemplatesDep,
    check_csrf,
)
from app.formats.filenames import safe_filename
from app.services import editors, export
from app.web.admission import EDITOR_KDF_WAIT_SECONDS
from app.web.forms import read_small_form

router = APIRouter()


def _attachment(filename: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/sources/{source_id}/export")
def export_source(source_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep) -> Response:
    plan = export.plan_bundle(session=db, store=store, source_id=source_id, editor_id=editor.editor_id)
    # The plan holds everything from the database, so the body streams after the session closes;
    # the bodies are copied as stored, 64 KiB at a time, never decrypted and never spooled.
    headers = {"Content-Disposition": _attachment(plan.filename), "Content-Length": str(plan.size)}
    return StreamingResponse(export.bundle_chunks(store, plan), media_type="application/x-tar", headers=headers)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, editor: CurrentEditor, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "account.html", {"editor": editor})


@router.post("/account/key-file", dependencies=[SameOrigin])
async def key_file(
    request: Request,
    editor: CurrentEditor,
    factory: SessionFactoryDep,
    templates: TemplatesDep,
    kdf_gate: KdfGateDep,
    throttle: LoginThrottleDep,
) -> Response:
    """The wrapped key, only to someone who knows the passphrase: a stolen session
    cookie alone must not carry the key away for an offline guessing attack."""
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    if not throttle.admit(editor.username):
        return templates.TemplateResponse(request, "account.html", {"editor": editor, "throttled": True}, 429)

    def fetch() -> bytes | None:
        with factory() as session:
            if not editors.check_passphrase(
                session=session, editor_id=editor.editor_id, passphrase=form.get("passphrase", "")
            ):
                return None
            return export.editor_key_file(session=session, editor_id=editor.editor_id)

    content = await kdf_gate.run(fetch, wait_seconds=EDITOR_KDF_WAIT_SECONDS)
    if content is None:
        throttle.failed(editor.username)
        return templates.TemplateResponse(request, "account.html", {"editor": editor, "wrong": True}, 401)
    filename = safe_filename(f"buzon-key-{editor.username}.json")
    return Response(content, media_type="application/json", headers={"Content-Disposition": _attachment(filename)})
