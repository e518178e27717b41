"""FastAPI dependencies, as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.templating import Jinja2Templates

from app.errors import CrossOriginRequest, FormExpired
from app.settings import Settings
from app.storage import BlobStore
from app.web.admission import KdfGate
from app.web.csrf import CsrfTokens
from app.web.security import is_cross_origin

CSRF_FIELD = "csrf_token"


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
SameOrigin = Depends(require_same_origin)
CsrfQuery = Depends(require_csrf_query)
