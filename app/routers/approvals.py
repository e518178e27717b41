"""Requests waiting for a second admin: the list, approving, withdrawing (app/services/approvals.py)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import (
    CSRF_FIELD,
    CurrentEditor,
    DbDep,
    KeyHolder,
    SameOrigin,
    SessionFactoryDep,
    StoreDep,
    TemplatesDep,
    check_csrf,
)
from app.services import approvals
from app.services.editors import UnlockedEditor
from app.web.forms import read_small_form

router = APIRouter()


def actor(editor: UnlockedEditor) -> approvals.Actor:
    return approvals.Actor(editor.editor_id, editor.username, editor.is_admin)


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, editor: CurrentEditor, db: DbDep, templates: TemplatesDep) -> Response:
    context = {
        "editor": editor,
        "pending": approvals.pending(db),
        "asked": request.query_params.get("asked") == "1",
        "days": approvals.APPROVAL_DAYS,
    }
    return templates.TemplateResponse(request, "approvals.html", context)


@router.post("/approvals/{approval_id}/approve", dependencies=[SameOrigin])
async def approve(
    request: Request, approval_id: str, editor: KeyHolder, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))

    def run() -> None:
        with factory() as session:
            approvals.approve(session, store, approval_id=approval_id, by=actor(editor), handling=editor)

    await to_thread.run_sync(run)
    return RedirectResponse("/approvals", status_code=303)


@router.post("/approvals/{approval_id}/withdraw", dependencies=[SameOrigin])
async def withdraw(request: Request, approval_id: str, editor: KeyHolder, db: DbDep) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))
    approvals.withdraw(db, approval_id=approval_id, by=actor(editor))
    return RedirectResponse("/approvals", status_code=303)
