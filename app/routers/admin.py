"""Admin pages: invites, who holds which key, key rotation and the audit log."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from app.db.models import Instance, KeyGrant, NewsroomKey
from app.deps import (
    CSRF_FIELD,
    DbDep,
    EditorLoginsDep,
    KeyHolder,
    SameOrigin,
    SessionFactoryDep,
    SettingsDep,
    TemplatesDep,
    check_csrf,
)
from app.errors import AdminsOnly
from app.evidence import identity
from app.evidence.identity import grouped
from app.services import approvals, audit, editors, invites, keys
from app.services.editors import UnlockedEditor
from app.web.forms import read_small_form

AUDIT_PAGE_SIZE = 200

router = APIRouter(prefix="/admin")


def require_admin(editor: KeyHolder) -> UnlockedEditor:
    # An admin who does not hold the key (never granted, or revoked) is no admin:
    # granting, revoking, inviting and rotating all need it.
    if not editor.is_admin:
        raise AdminsOnly()
    return editor


Admin = Annotated[UnlockedEditor, Depends(require_admin)]


async def _checked_form(request: Request) -> dict[str, str]:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    return form


@router.get("/editors", response_class=HTMLResponse)
def editors_page(request: Request, admin: Admin, db: DbDep, templates: TemplatesDep) -> Response:
    active = db.scalars(select(NewsroomKey.key_id).where(NewsroomKey.active)).first()
    context = {
        "editor": admin,
        "editors": editors.list_editors(db),
        "active_key": active,
        "invites": invites.pending_invites(db),
        "holds_key": editors.holds_key,
        "can_grant": bool(admin.newsroom_keys),
    }
    return templates.TemplateResponse(request, "admin_editors.html", context)


@router.post("/invites", response_class=HTMLResponse, dependencies=[SameOrigin])
async def invite(request: Request, admin: Admin, factory: SessionFactoryDep, templates: TemplatesDep) -> Response:
    form = await _checked_form(request)
    username = form.get("username", "").strip()

    def create() -> str:
        with factory() as session:
            return invites.create_invite(
                session=session, username=username, is_admin=form.get("admin") == "1", actor=admin.username
            )

    token = await to_thread.run_sync(create)
    link = str(request.base_url).rstrip("/") + f"/invite/{token}"
    context = {"editor": admin, "username": username, "link": link, "days": invites.INVITE_DAYS}
    return templates.TemplateResponse(request, "admin_invite.html", context)


@router.post("/invites/cancel", dependencies=[SameOrigin])
async def cancel_invite(request: Request, admin: Admin, db: DbDep) -> Response:
    form = await _checked_form(request)
    invites.cancel_invite(session=db, username=form.get("username", ""), actor=admin.username)
    return RedirectResponse("/admin/editors", status_code=303)


@router.post("/editors/{editor_id}/grant", dependencies=[SameOrigin])
async def grant(request: Request, editor_id: str, admin: Admin, db: DbDep) -> Response:
    await _checked_form(request)
    editors.grant_access(session=db, editor_id=editor_id, newsroom_keys=admin.newsroom_keys, actor=admin.username)
    return RedirectResponse("/admin/editors", status_code=303)


@router.post("/editors/{editor_id}/revoke", dependencies=[SameOrigin])
async def revoke(request: Request, editor_id: str, admin: Admin, db: DbDep, logins: EditorLoginsDep) -> Response:
    await _checked_form(request)
    if editor_id != admin.editor_id:
        editors.revoke_access(session=db, editor_id=editor_id, actor=admin.username)
        logins.end_all_for(editor_id)
    return RedirectResponse("/admin/editors", status_code=303)


@router.post("/editors/{editor_id}/delete", dependencies=[SameOrigin])
async def delete(
    request: Request, editor_id: str, admin: Admin, db: DbDep, logins: EditorLoginsDep, settings: SettingsDep
) -> Response:
    await _checked_form(request)
    if editor_id == admin.editor_id:
        return RedirectResponse("/admin/editors", status_code=303)
    if approvals.second_admin_needed(db, enabled=settings.second_admin_approval):
        by = approvals.Actor(admin.editor_id, admin.username, admin.is_admin)
        approvals.request(db, action=approvals.DELETE_EDITOR, target_id=editor_id, by=by)
        return RedirectResponse("/approvals?asked=1", status_code=303)
    editors.delete_editor(session=db, editor_id=editor_id, actor=admin.username)
    logins.end_all_for(editor_id)
    return RedirectResponse("/admin/editors", status_code=303)


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, admin: Admin, db: DbDep, templates: TemplatesDep) -> Response:
    holders = dict(db.execute(select(KeyGrant.key_id, func.count()).group_by(KeyGrant.key_id)).all())
    newsroom_keys = list(db.scalars(select(NewsroomKey).order_by(NewsroomKey.created_on.desc(), NewsroomKey.key_id)))
    instance = db.get(Instance, 1)
    signing = instance.signing_public_key if instance is not None else None
    fingerprint = grouped(identity.fingerprint(signing)) if signing is not None else ""
    context = {"editor": admin, "keys": newsroom_keys, "holders": holders, "instance_fingerprint": fingerprint}
    return templates.TemplateResponse(request, "admin_keys.html", context)


@router.post("/keys/rotate", dependencies=[SameOrigin])
async def rotate(request: Request, admin: Admin, factory: SessionFactoryDep) -> Response:
    await _checked_form(request)

    def rotate_now() -> None:
        with factory() as session:
            keys.rotate_and_end_logins(session=session, actor=admin.username)

    await to_thread.run_sync(rotate_now)
    return RedirectResponse("/login?rotated=1", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, admin: Admin, db: DbDep, templates: TemplatesDep, page: int = 1) -> Response:
    page = max(1, page)
    entries = audit.recent(db, limit=AUDIT_PAGE_SIZE + 1, offset=(page - 1) * AUDIT_PAGE_SIZE)
    context = {
        "editor": admin,
        "entries": entries[:AUDIT_PAGE_SIZE],
        "page": page,
        "has_next": len(entries) > AUDIT_PAGE_SIZE,
    }
    return templates.TemplateResponse(request, "admin_audit.html", context)
