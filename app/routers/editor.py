"""Editor portal routes: login, the inbox and search, a source's page with triage, deletion, downloads."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

from anyio import to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from app import crypto
from app.db.models import SOURCE_STATUSES, Item, Source
from app.deps import (
    CSRF_FIELD,
    EDITOR_COOKIE,
    AuthenticatorDep,
    CurrentEditor,
    DbDep,
    EditorLoginsDep,
    KdfGateDep,
    KeyHolder,
    LoginRequired,
    LoginThrottleDep,
    SameOrigin,
    SessionFactoryDep,
    SettingsDep,
    StoreDep,
    TemplatesDep,
    check_csrf,
)
from app.errors import NotFound
from app.evidence import custody as custody_formats
from app.services import (
    anchors,
    approvals,
    audit,
    custody,
    deletion,
    desk,
    keys,
    replies,
    retention,
    search,
    submissions,
    triage,
)
from app.services.editors import LoginFailed, UnlockedEditor, pack_session
from app.settings import Settings
from app.web import downloads
from app.web.admission import EDITOR_KDF_WAIT_SECONDS
from app.web.forms import MAX_FORM_BYTES, read_small_form
from app.web.logins import EditorLogin

PAGE_SIZE = 100
# A reply of 100,000 characters, url-encoded, fits with room to spare.
MAX_REPLY_FORM_BYTES = 1024 * 1024
MAX_NOTE_FORM_BYTES = 256 * 1024

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "login.html")


@router.post("/login", response_class=HTMLResponse, dependencies=[SameOrigin])
async def login(
    request: Request,
    templates: TemplatesDep,
    factory: SessionFactoryDep,
    kdf_gate: KdfGateDep,
    authenticator: AuthenticatorDep,
    throttle: LoginThrottleDep,
    logins: EditorLoginsDep,
) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    username = form.get("username", "")
    if not throttle.admit(username):
        context = {"throttled": True, "username": username}
        return templates.TemplateResponse(request, "login.html", context, status_code=429)

    def attempt() -> UnlockedEditor:
        with factory() as session:
            return authenticator.login(
                session=session,
                username=form.get("username", ""),
                passphrase=form.get("passphrase", ""),
                otp=form.get("otp", ""),
            )

    try:
        editor = await kdf_gate.run(attempt, wait_seconds=EDITOR_KDF_WAIT_SECONDS)
    except LoginFailed:
        throttle.failed(username)
        context = {"failed": True, "username": username}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    throttle.succeeded(username)
    await to_thread.run_sync(_sign_anchors, factory, editor.newsroom_keys)
    response = RedirectResponse("/", status_code=303)
    login = EditorLogin(session_epoch=editor.session_epoch)
    cookie = logins.create(editor.editor_id, pack_session(editor.newsroom_keys, editor.signing_key), login)
    response.set_cookie(EDITOR_COOKIE, cookie, httponly=True, samesite="strict", path="/")
    return response


def _sign_anchors(factory: sessionmaker[Session], newsroom_keys: crypto.NewsroomKeys) -> None:
    """Sign the anchors made since the last login: only a key holder's session can (docs/evidence.md)."""
    with factory() as session:
        try:
            anchors.sign_anchors(session=session, newsroom_keys=newsroom_keys)
        except crypto.DecryptionError:
            session.rollback()  # an editor without the key the instance key is sealed to: the next one signs


@router.post("/logout", dependencies=[SameOrigin])
async def logout(request: Request, logins: EditorLoginsDep) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))
    logins.end(request.cookies.get(EDITOR_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(EDITOR_COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- the desk --------------------------------------------------------------------------


def _filter_query(filters: triage.InboxFilter) -> str:
    pairs = {"status": filters.status, "tag": filters.tag_id, "assignee": filters.assignee}
    query = {k: v for k, v in pairs.items() if v}
    if filters.starred:
        query["starred"] = "1"
    return urlencode(query)


def _retention_warnings(db: Session, settings: Settings) -> list[retention.UpcomingDeletion]:
    if settings.retention_days is None:
        return []
    return retention.upcoming(
        session=db, retention_days=settings.retention_days, warning_days=settings.retention_warning_days
    )


@router.get("/", response_class=HTMLResponse)
def inbox(
    request: Request,
    editor: CurrentEditor,
    db: DbDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    page: int = 1,
    status: str = "",
    tag: str = "",
    assignee: str = "",
    starred: bool = False,
) -> Response:
    page = max(1, page)
    filters = triage.InboxFilter(status=status, tag_id=tag, assignee=assignee, starred=starred)
    rows = triage.list_sources(
        session=db, filters=filters, editor_id=editor.editor_id, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
    )
    context = {
        "editor": editor,
        "sources": rows[:PAGE_SIZE],
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "filters": filters,
        "filter_query": _filter_query(filters),
        "statuses": SOURCE_STATUSES,
        "tag_names": triage.tag_names(session=db, newsroom_keys=editor.newsroom_keys),
        "editors": triage.editors_by_name(db),
        "retention_warnings": _retention_warnings(db, settings),
    }
    return templates.TemplateResponse(request, "inbox.html", context)


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    editor: CurrentEditor,
    db: DbDep,
    store: StoreDep,
    templates: TemplatesDep,
    logins: EditorLoginsDep,
    q: str = "",
    page: int = 1,
) -> Response:
    page = max(1, page)
    scratch = logins.scratch(request.cookies.get(EDITOR_COOKIE))
    if scratch is None:
        raise LoginRequired()
    try:
        found = search.search_sources(
            session=db, store=store, scratch=scratch, newsroom_keys=editor.newsroom_keys, query=q
        )
    except search.InvalidQuery:
        found = None
    if q:
        audit.record_read(db, actor=editor.username, action="search")
    rows = (
        []
        if found is None
        else triage.rows_for_ids(session=db, source_ids=found, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    )
    context = {
        "editor": editor,
        "query": q,
        "valid": found is not None,
        "sources": rows[:PAGE_SIZE],
        "total": len(found or ()),
        "page": page,
        "has_next": len(rows) > PAGE_SIZE,
        "search_query": urlencode({"q": q}),
        "tag_names": triage.tag_names(session=db, newsroom_keys=editor.newsroom_keys),
    }
    return templates.TemplateResponse(request, "search.html", context)


@router.get("/sources/{source_id}", response_class=HTMLResponse)
def source_page(
    request: Request,
    source_id: str,
    editor: CurrentEditor,
    db: DbDep,
    store: StoreDep,
    settings: SettingsDep,
    templates: TemplatesDep,
) -> Response:
    view = desk.open_source_page(
        session=db,
        store=store,
        source_id=source_id,
        newsroom_keys=editor.newsroom_keys,
        retention_days=settings.retention_days,
    )
    if audit.record_read(db, actor=editor.username, action="source view", target=view.designation):
        # The first view of the day goes on each item's custody record, as the audit log's line does.
        custody.record_for_source(db, editor, source_id, "opened")
    context = {"editor": editor, "source": view, "statuses": SOURCE_STATUSES, "max_tag": triage.MAX_TAG_CHARS}
    return templates.TemplateResponse(request, "source.html", context)


async def _checked_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    form = await read_small_form(request, max_bytes=max_bytes)
    check_csrf(request, form.get(CSRF_FIELD))
    return form


SourceChange = Callable[[Session, Source, dict[str, str]], None]


async def _change_source(
    request: Request, factory: sessionmaker[Session], source_id: str, change: SourceChange, max_bytes: int = 0
) -> Response:
    """Check the form, apply ``change`` to the source in a worker thread, go back to its page."""
    form = await _checked_form(request, max_bytes or MAX_FORM_BYTES)

    def run() -> None:
        with factory() as session:
            change(session, triage.get_source(session=session, source_id=source_id), form)

    await to_thread.run_sync(run)
    return RedirectResponse(f"/sources/{source_id}", status_code=303)


@router.post("/sources/{source_id}/status", dependencies=[SameOrigin])
async def set_status(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.set_status(session=session, source=source, status=form.get("status", ""), actor=editor.username)
        custody.record_for_source(session, editor, source.id, "status changed", detail=source.status)

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/star", dependencies=[SameOrigin])
async def set_star(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.set_starred(session=session, source=source, starred=form.get("starred") == "1", actor=editor.username)

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/assign", dependencies=[SameOrigin])
async def assign(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.assign(session=session, source=source, editor_id=form.get("assignee") or None, actor=editor.username)

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/hide", dependencies=[SameOrigin])
async def set_hidden(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.set_hidden(session=session, source=source, hidden=form.get("hidden") == "1", actor=editor.username)

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/tags", dependencies=[SameOrigin])
async def add_tag(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.add_tag(
            session=session,
            source=source,
            name=form.get("name", ""),
            actor=editor.username,
            newsroom_keys=editor.newsroom_keys,
            newsroom_public_key=keys.active_public_key(session),
        )
        custody.record_for_source(session, editor, source.id, "tagged", detail="added")

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/tags/{tag_id}/remove", dependencies=[SameOrigin])
async def remove_tag(
    request: Request, source_id: str, tag_id: str, editor: KeyHolder, factory: SessionFactoryDep
) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.remove_tag(session=session, source=source, tag_id=tag_id, actor=editor.username)
        custody.record_for_source(session, editor, source.id, "tagged", detail="removed")

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/notes", dependencies=[SameOrigin])
async def add_note(request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        triage.add_note(
            session=session,
            source=source,
            text=form.get("text", ""),
            author=editor.username,
            newsroom_public_key=keys.active_public_key(session),
        )
        custody.record_for_source(session, editor, source.id, "noted", detail="added")

    return await _change_source(request, factory, source_id, change, MAX_NOTE_FORM_BYTES)


@router.post("/sources/{source_id}/notes/{note_id}/delete", dependencies=[SameOrigin])
async def delete_note(
    request: Request, source_id: str, note_id: str, editor: KeyHolder, factory: SessionFactoryDep
) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        deletion.delete_note(session=session, source_id=source.id, note_id=note_id, actor=editor.username)
        custody.record_for_source(session, editor, source.id, "noted", detail="deleted")

    return await _change_source(request, factory, source_id, change)


@router.post("/sources/{source_id}/reply", dependencies=[SameOrigin])
async def reply(
    request: Request, source_id: str, editor: KeyHolder, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        replies.send_reply(
            session=session,
            store=store,
            source=source,
            text=form.get("reply", ""),
            newsroom_public_key=keys.active_public_key(session),
            author=editor.username,
        )

    return await _change_source(request, factory, source_id, change, MAX_REPLY_FORM_BYTES)


@router.post("/sources/{source_id}/replies/{reply_id}/delete", dependencies=[SameOrigin])
async def delete_reply(
    request: Request, source_id: str, reply_id: str, editor: KeyHolder, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    def change(session: Session, source: Source, form: dict[str, str]) -> None:
        deletion.delete_reply(
            session=session, store=store, source_id=source.id, reply_id=reply_id, actor=editor.username
        )

    return await _change_source(request, factory, source_id, change)


@router.post("/items/{item_id}/delete", dependencies=[SameOrigin])
async def delete_item(
    request: Request, item_id: str, editor: KeyHolder, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    await _checked_form(request)

    def run() -> str:
        with factory() as session:
            # The tombstone first: once the item is gone, nothing could name it.
            item = session.get(Item, item_id)
            if item is not None:
                custody.record(session, editor, [item], custody_formats.DELETED)
            return deletion.delete_item(session=session, store=store, item_id=item_id, actor=editor.username)

    source_id = await to_thread.run_sync(run)
    return RedirectResponse(f"/sources/{source_id}", status_code=303)


@router.get("/sources/{source_id}/delete", response_class=HTMLResponse)
def confirm_delete_source(
    request: Request, source_id: str, editor: CurrentEditor, db: DbDep, templates: TemplatesDep
) -> Response:
    source = triage.get_source(session=db, source_id=source_id)
    context = {"editor": editor, "source": source}
    return templates.TemplateResponse(request, "delete_source.html", context)


@router.post("/sources/{source_id}/delete", dependencies=[SameOrigin])
async def delete_source(
    request: Request,
    source_id: str,
    editor: KeyHolder,
    factory: SessionFactoryDep,
    store: StoreDep,
    settings: SettingsDep,
) -> Response:
    await _checked_form(request)

    def run() -> str | None:
        with factory() as session:
            if approvals.second_admin_needed(session, enabled=settings.second_admin_approval):
                by = approvals.Actor(editor.editor_id, editor.username, editor.is_admin)
                approvals.request(session, action=approvals.DELETE_SOURCE, target_id=source_id, by=by)
                return "/approvals?asked=1"
            custody.record_for_source(session, editor, source_id, custody_formats.DELETED)
            deleted = deletion.delete_sources(
                session=session, store=store, source_ids=[source_id], actor=editor.username
            )
            return "/" if deleted else None

    then = await to_thread.run_sync(run)
    if then is None:
        raise NotFound()
    return RedirectResponse(then, status_code=303)


@router.get("/items/{item_id}/download")
def download(item_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep) -> Response:
    metadata, chunks = submissions.open_item_stream(
        session=db, store=store, item_id=item_id, newsroom_keys=editor.newsroom_keys
    )
    audit.record_read(db, actor=editor.username, action="item download", target=audit.item_target(db, item_id))
    custody.record(db, editor, [db.get_one(Item, item_id)], "downloaded")
    # The first batch is decrypted before the status line, so a tampered body that fits
    # in one batch (most messages) is refused with a 404 rather than cut short after a 200.
    body = downloads.primed(downloads.batched(chunks))
    filename = metadata.name or "message.txt"
    headers = {
        # Always a download, never rendered: the type came from the source.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Length": str(metadata.size),
    }
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)


def install(app: FastAPI) -> None:
    async def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.include_router(router)
