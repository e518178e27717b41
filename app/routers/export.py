"""The editor's own account (passphrase, key file) and downloads for offline work (a source's encrypted bundle)."""

from __future__ import annotations

from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from app.deps import (
    CSRF_FIELD,
    EDITOR_COOKIE,
    CurrentEditor,
    DbDep,
    EditorLoginsDep,
    KdfGateDep,
    LoginRequired,
    LoginThrottleDep,
    SameOrigin,
    SessionFactoryDep,
    SettingsDep,
    StoreDep,
    TemplatesDep,
    check_csrf,
)
from app.formats.filenames import safe_filename
from app.passphrases import MIN_CHARS, weakness
from app.services import custody, editors, export
from app.services.editors import UnlockedEditor
from app.web.admission import EDITOR_KDF_WAIT_SECONDS
from app.web.forms import read_small_form
from app.web.totp import totp_setup_context

router = APIRouter()


def _attachment(filename: str) -> str:
    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/sources/{source_id}/export")
def export_source(source_id: str, editor: CurrentEditor, db: DbDep, store: StoreDep) -> Response:
    plan = export.plan_bundle(session=db, store=store, source_id=source_id, editor_id=editor.editor_id)
    custody.record_for_source(db, editor, source_id, "exported")
    # The plan holds everything from the database, so the body streams after the session closes;
    # the bodies are copied as stored, 64 KiB at a time, never decrypted and never spooled.
    headers = {"Content-Disposition": _attachment(plan.filename), "Content-Length": str(plan.size)}
    return StreamingResponse(export.bundle_chunks(store, plan), media_type="application/x-tar", headers=headers)


def _account_page(
    request: Request, templates: TemplatesDep, editor: UnlockedEditor, status_code: int = 200, **context: object
) -> Response:
    context = {"editor": editor, "min_chars": MIN_CHARS, **context}
    return templates.TemplateResponse(request, "account.html", context, status_code=status_code)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, editor: CurrentEditor, templates: TemplatesDep) -> Response:
    return _account_page(request, templates, editor)


@router.post("/account/passphrase", response_class=HTMLResponse, dependencies=[SameOrigin])
async def change_passphrase(
    request: Request,
    editor: CurrentEditor,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    kdf_gate: KdfGateDep,
    throttle: LoginThrottleDep,
) -> Response:
    """A new passphrase for the editor's own key; every login of the account ends, this one too."""
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    new = form.get("new_passphrase", "")
    if new != form.get("new_passphrase_confirm", ""):
        return _account_page(request, templates, editor, 400, change_error="The two new passphrases differ.")
    problem = await to_thread.run_sync(lambda: weakness(new, username=editor.username))
    if problem:
        return _account_page(request, templates, editor, 400, change_error=problem)
    if not throttle.admit(editor.username):
        return _account_page(request, templates, editor, 429, throttled=True)

    def change() -> None:
        with factory() as session:
            editors.change_passphrase(
                session=session,
                editor_id=editor.editor_id,
                current=form.get("passphrase", ""),
                new=new,
                kdf=settings.editor_kdf,
            )

    try:
        await kdf_gate.run(change, wait_seconds=EDITOR_KDF_WAIT_SECONDS)
    except editors.LoginFailed:
        throttle.failed(editor.username)
        return _account_page(request, templates, editor, 401, change_error="Your current passphrase is not right.")
    return RedirectResponse("/login?passphrase_changed=1", status_code=303)


# The new TOTP secret waits in the login's own memory between the two steps.
_PENDING_TOTP = "pending_totp_secret"


@router.post("/account/totp", response_class=HTMLResponse, dependencies=[SameOrigin])
async def start_totp_change(
    request: Request,
    editor: CurrentEditor,
    factory: SessionFactoryDep,
    templates: TemplatesDep,
    kdf_gate: KdfGateDep,
    throttle: LoginThrottleDep,
    logins: EditorLoginsDep,
) -> Response:
    """Step one of a new phone: the passphrase, then a fresh secret to scan. The old one works until step two."""
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    if not throttle.admit(editor.username):
        return _account_page(request, templates, editor, 429, throttled=True)

    def check() -> bool:
        with factory() as session:
            return editors.check_passphrase(
                session=session, editor_id=editor.editor_id, passphrase=form.get("passphrase", "")
            )

    if not await kdf_gate.run(check, wait_seconds=EDITOR_KDF_WAIT_SECONDS):
        throttle.failed(editor.username)
        return _account_page(request, templates, editor, 401, totp_wrong=True)
    scratch = logins.scratch(request.cookies.get(EDITOR_COOKIE))
    if scratch is None:
        raise LoginRequired()
    secret = scratch[_PENDING_TOTP] = editors.new_totp_secret()
    context = totp_setup_context(
        username=editor.username, totp_secret=secret, action="/account/totp/confirm", error=False
    )
    return templates.TemplateResponse(request, "enrol_totp.html", context)


@router.post("/account/totp/confirm", response_class=HTMLResponse, dependencies=[SameOrigin])
async def confirm_totp_change(
    request: Request,
    editor: CurrentEditor,
    factory: SessionFactoryDep,
    templates: TemplatesDep,
    logins: EditorLoginsDep,
) -> Response:
    form = await read_small_form(request)
    check_csrf(request, form.get(CSRF_FIELD))
    scratch = logins.scratch(request.cookies.get(EDITOR_COOKIE))
    secret = None if scratch is None else scratch.get(_PENDING_TOTP)
    if not isinstance(secret, str):
        return RedirectResponse("/account", status_code=303)

    def replace() -> None:
        with factory() as session:
            editors.replace_totp(
                session=session, editor_id=editor.editor_id, totp_secret=secret, otp=form.get("otp", "")
            )

    try:
        await to_thread.run_sync(replace)
    except editors.LoginFailed:
        context = totp_setup_context(
            username=editor.username, totp_secret=secret, action="/account/totp/confirm", error=True
        )
        return templates.TemplateResponse(request, "enrol_totp.html", context, status_code=400)
    return RedirectResponse("/login?totp_changed=1", status_code=303)


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
        return _account_page(request, templates, editor, 429, throttled=True)

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
        return _account_page(request, templates, editor, 401, wrong=True)
    filename = safe_filename(f"buzon-key-{editor.username}.json")
    return Response(content, media_type="application/json", headers={"Content-Disposition": _attachment(filename)})
