"""Editor portal routes: login, inbox, a source's submissions, downloads."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from app import crypto
from app.db.models import Editor
from app.deps import CSRF_FIELD, DbDep, SameOrigin, SessionFactoryDep, StoreDep, TemplatesDep, check_csrf
from app.errors import EmptyReplyError, NotFound
from app.forms import read_small_form
from app.services import keys, replies, submissions
from app.services.editors import Authenticator, LoginFailed, UnlockedEditor, pack_keys, unpack_keys
from app.sessions import SessionStore

COOKIE_NAME = "buzon_editor"
PAGE_SIZE = 100
# A reply of 100,000 characters, url-encoded, fits with room to spare.
MAX_REPLY_FORM_BYTES = 1024 * 1024

router = APIRouter()


class LoginRequired(Exception):
    pass


def _sessions(request: Request) -> SessionStore:
    sessions: SessionStore = request.app.state.sessions
    return sessions


def require_editor(request: Request, db: DbDep) -> UnlockedEditor:
    cookie = request.cookies.get(COOKIE_NAME)
    session = _sessions(request).get(cookie)
    if session is None:
        raise LoginRequired()
    # Checked against the database on every request, so a revocation or
    # passphrase change made by any process ends this session at once.
    account = db.get(Editor, session.principal)
    if account is None or str(account.session_epoch) != session.labels[0]:
        _sessions(request).end(cookie)
        raise LoginRequired()
    return UnlockedEditor(account.id, account.username, account.is_admin, unpack_keys(session.secret))


CurrentEditor = Annotated[UnlockedEditor, Depends(require_editor)]


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, templates: TemplatesDep) -> Response:
    return templates.TemplateResponse(request, "login.html")


@router.post("/login", response_class=HTMLResponse, dependencies=[SameOrigin])
async def login(request: Request, templates: TemplatesDep, factory: SessionFactoryDep) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    authenticator: Authenticator = request.app.state.authenticator

    def attempt() -> UnlockedEditor:
        with factory() as session:
            return authenticator.login(
                session=session,
                username=form.get("username", ""),
                passphrase=form.get("passphrase", ""),
                otp=form.get("otp", ""),
            )

    try:
        editor = await to_thread.run_sync(attempt)
    except LoginFailed:
        context = {"failed": True, "username": form.get("username", "")}
        return templates.TemplateResponse(request, "login.html", context, status_code=401)
    response = RedirectResponse("/", status_code=303)
    labels = (str(editor.session_epoch),)
    cookie = _sessions(request).create(editor.editor_id, pack_keys(editor.newsroom_keys), labels)
    response.set_cookie(COOKIE_NAME, cookie, httponly=True, samesite="strict", path="/")
    return response


@router.post("/logout", dependencies=[SameOrigin])
async def logout(request: Request) -> Response:
    check_csrf(request, (await read_small_form(request)).get(CSRF_FIELD))
    _sessions(request).end(request.cookies.get(COOKIE_NAME))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, editor: CurrentEditor, db: DbDep, templates: TemplatesDep, page: int = 1) -> Response:
    page = max(1, page)
    sources = submissions.list_sources(session=db, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    context = {
        "editor": editor,
        "sources": sources[:PAGE_SIZE],
        "page": page,
        "has_next": len(sources) > PAGE_SIZE,
    }
    return templates.TemplateResponse(request, "inbox.html", context)


@router.get("/sources/{source_id}", response_class=HTMLResponse)
def source_page(
    request: Request, source_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep, templates: TemplatesDep
) -> Response:
    source = submissions.get_source(session=db, source_id=source_id)
    if source is None:
        raise NotFound()
    try:
        opened = submissions.open_source_submissions(
            session=db, store=store, source=source, newsroom_keys=editor.newsroom_keys
        )
        sent = replies.replies_for_editor(
            session=db, store=store, source_id=source.id, newsroom_keys=editor.newsroom_keys
        )
        readable = True
    except crypto.DecryptionError:
        opened, sent, readable = [], [], False
    context = {"editor": editor, "source": source, "submissions": opened, "replies": sent, "readable": readable}
    return templates.TemplateResponse(request, "source.html", context)


@router.post("/sources/{source_id}/reply", dependencies=[SameOrigin])
async def reply(
    request: Request, source_id: str, editor: CurrentEditor, factory: SessionFactoryDep, store: StoreDep
) -> Response:
    form = await read_small_form(request, max_bytes=MAX_REPLY_FORM_BYTES)
    check_csrf(request, form.get(CSRF_FIELD))

    def send() -> None:
        with factory() as session:
            source = submissions.get_source(session=session, source_id=source_id)
            if source is None:
                raise NotFound()
            replies.send_reply(
                session=session,
                store=store,
                source=source,
                text=form.get("reply", ""),
                newsroom_public_key=keys.active_public_key(session),
            )

    try:
        await to_thread.run_sync(send)
    except replies.EmptyReply as e:
        raise EmptyReplyError() from e
    return RedirectResponse(f"/sources/{source_id}", status_code=303)


@router.get("/items/{item_id}/download")
def download(item_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep) -> Response:
    try:
        metadata, chunks = submissions.open_item_stream(
            session=db, store=store, item_id=item_id, newsroom_keys=editor.newsroom_keys
        )
    except (submissions.ItemNotFound, crypto.DecryptionError) as e:
        raise NotFound() from e
    filename = metadata.name or "message.txt"
    headers = {
        # Always a download, never rendered: the type came from the source.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename, safe='')}",
        "Content-Length": str(metadata.size),
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)


def install(app: FastAPI) -> None:
    async def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.include_router(router)
