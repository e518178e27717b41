"""FastAPI dependencies, as Annotated aliases: the only place that reads ``app.state``.

Routers name what they need (``DbDep``, ``EditorLoginsDep``, ``CurrentEditor``)
and never reach into the app by hand, so what each app holds is listed once,
in app/main.py, and read once, here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.templating import Jinja2Templates

from app.db.models import Editor
from app.errors import CrossOriginRequest, FormExpired, KeyNotHeld
from app.intake.filebody import StripPolicy
from app.media.sandbox import Sandbox
from app.services import keys
from app.services.editors import Authenticator, UnlockedEditor, unpack_session
from app.settings import Settings
from app.storage import BlobStore
from app.web.admission import Admission, KdfGate
from app.web.csrf import CsrfTokens
from app.web.logins import EditorLogins, Enrolments, SourceLogins
from app.web.security import is_cross_origin
from app.web.throttle import LoginThrottle

CSRF_FIELD = "csrf_token"
EDITOR_COOKIE = "buzon_editor"


class LoginRequired(Exception):
    """No live editor login: the editor app answers with the login page."""


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_db(request: Request) -> Iterator[Session]:
    with get_session_factory(request)() as session:
        yield session


def get_store(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.store
    return store


def get_kdf_gate(request: Request) -> KdfGate:
    gate: KdfGate = request.app.state.kdf_gate
    return gate


def get_templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def get_source_logins(request: Request) -> SourceLogins:
    logins: SourceLogins = request.app.state.source_logins
    return logins


def get_editor_logins(request: Request) -> EditorLogins:
    logins: EditorLogins = request.app.state.editor_logins
    return logins


def get_enrolments(request: Request) -> Enrolments:
    enrolments: Enrolments = request.app.state.enrolments
    return enrolments


def get_admission(request: Request) -> Admission:
    admission: Admission = request.app.state.admission
    return admission


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def get_strip_policy(request: Request) -> StripPolicy:
    policy: StripPolicy = request.app.state.strip_policy
    return policy


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def get_login_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


def require_editor(request: Request, db: DbDep) -> UnlockedEditor:
    """The one check behind every editor page: a live login whose account still holds it."""
    logins = get_editor_logins(request)
    cookie = request.cookies.get(EDITOR_COOKIE)
    login = logins.get(cookie)
    if login is None:
        raise LoginRequired()
    # Checked against the database on every request, so a revocation or
    # passphrase change made by any process ends this login at once.
    account = db.get(Editor, login.principal)
    if account is None or account.disabled or account.session_epoch != login.payload.session_epoch:
        logins.end(cookie)
        raise LoginRequired()
    newsroom_keys, signing_key = unpack_session(login.secret)
    return UnlockedEditor(account.id, account.username, account.is_admin, newsroom_keys, signing_key)


def require_key_holder(editor: Annotated[UnlockedEditor, Depends(require_editor)], db: DbDep) -> UnlockedEditor:
    """The one check behind every change: the editor holds the active newsroom key.

    An enrolled editor waiting for a grant may read the inbox (it shows them
    nothing they could decrypt) but can change, send or delete nothing.
    """
    if not keys.holds_active_key(session=db, newsroom_keys=editor.newsroom_keys):
        raise KeyNotHeld()
    return editor


def require_same_origin(request: Request) -> None:
    if is_cross_origin(request.headers):
        raise CrossOriginRequest()


def issue_csrf_token(request: Request) -> str:
    """The token a form on this page must send back (a Jinja global)."""
    csrf: CsrfTokens = request.app.state.csrf
    return csrf.issue(request.cookies.get(request.app.state.csrf_cookie, ""))


def check_csrf(request: Request, token: str | None) -> None:
    csrf: CsrfTokens = request.app.state.csrf
    if not csrf.verify(request.cookies.get(request.app.state.csrf_cookie), token):
        raise FormExpired()


def require_csrf_query(request: Request) -> None:
    """For multipart forms, whose token rides in the action URL so it is checked before any upload byte."""
    check_csrf(request, request.query_params.get(CSRF_FIELD))


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
DbDep = Annotated[Session, Depends(get_db)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
KdfGateDep = Annotated[KdfGate, Depends(get_kdf_gate)]
SourceLoginsDep = Annotated[SourceLogins, Depends(get_source_logins)]
EditorLoginsDep = Annotated[EditorLogins, Depends(get_editor_logins)]
EnrolmentsDep = Annotated[Enrolments, Depends(get_enrolments)]
AdmissionDep = Annotated[Admission, Depends(get_admission)]
StripPolicyDep = Annotated[StripPolicy, Depends(get_strip_policy)]
SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
LoginThrottleDep = Annotated[LoginThrottle, Depends(get_login_throttle)]
CurrentEditor = Annotated[UnlockedEditor, Depends(require_editor)]
# Every state-changing editor route takes this instead of CurrentEditor.
KeyHolder = Annotated[UnlockedEditor, Depends(require_key_holder)]
SameOrigin = Depends(require_same_origin)
CsrfQuery = Depends(require_csrf_query)
