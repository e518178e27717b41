"""The one table from service errors to pages."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from jinja2 import DictLoader

import app.main  # noqa: F401 - loads every module that defines a service error
from app import errors
from app.main import create_source_app
from app.services import deletion, export, invites, replies, submissions, triage
from app.web import i18n
from app.web.error_pages import NOT_FOUND, PAGES, SESSION_EXPIRED, STORAGE_FULL, page_for
from app.web.security import SECURITY_HEADERS
from tests.support import Instance
from tests.support.inprocess import TestClient

BASE_URL = "http://127.0.0.1:8080"


def _all_subclasses(kind: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for sub in kind.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


@pytest.mark.parametrize("error", sorted(_all_subclasses(errors.ServiceError), key=repr))
def test_every_service_error_has_a_readable_page(error: type[Exception]) -> None:
    page = page_for(error())
    assert 400 <= page.status_code < 600
    assert page.status_code != 500, "a service error is never an internal error"
    assert page.title
    assert page.advice


@pytest.mark.parametrize(
    "error",
    [
        triage.SourceNotFound(),
        submissions.ItemNotFound(),
        deletion.NothingToDelete(),
        export.ExportNotFound(),
        export.KeyNotGranted(),
        invites.InviteInvalid(),
    ],
)
def test_every_not_found_gets_a_404(error: Exception) -> None:
    assert page_for(error).status_code == 404


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (errors.NotFound, 404),
        (errors.InvalidInput, 400),
        (errors.Forbidden, 403),
        (errors.NotLoggedIn, 401),
        (errors.NotInitialised, 503),
        (errors.Unavailable, 503),
    ],
)
def test_every_error_of_a_kind_gets_at_least_its_kinds_status(kind: type[Exception], status: int) -> None:
    assert page_for(kind()).status_code == status
    # Members of a kind may have a page of their own, but not a status of another kind.
    for member in _all_subclasses(kind):
        assert page_for(member()).status_code // 100 == status // 100, member


def test_a_named_error_wins_over_its_kind() -> None:
    # SourceGone is a NotFound, but a source deleted while logged in sees their session end.
    assert isinstance(submissions.SourceGone(), errors.NotFound)
    assert page_for(submissions.SourceGone()) == SESSION_EXPIRED
    assert page_for(errors.NotFound()) == NOT_FOUND
    assert page_for(replies.EmptyReply()).title == "The reply was not sent"


def test_a_full_disk_behind_any_error_is_the_out_of_space_page() -> None:
    wrapped = RuntimeError("while writing")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert page_for(wrapped) == STORAGE_FULL


def test_anything_else_is_a_plain_500() -> None:
    page = page_for(KeyError("internal detail"))
    assert page.status_code == 500
    assert "internal detail" not in page.title + page.advice


def test_the_table_names_only_service_errors() -> None:
    assert all(issubclass(kind, errors.ServiceError) for kind in PAGES)


# --- when the error page itself cannot be drawn ---------------------------------------


def _app_whose_error_page_breaks(instance: Instance) -> FastAPI:
    app = create_source_app(instance.settings)
    # A template that fails as it renders, as a bad translation or a missing file would.
    app.state.templates.env.loader = DictLoader({"error.html": "{{ undefined_thing.attribute }}"})
    app.state.templates.env.cache = None

    async def crash() -> None:
        raise RuntimeError("internal detail")

    app.add_api_route("/crash", crash, methods=["GET"])
    return app


@pytest.mark.parametrize("path", ["/no-such-page", "/crash"])
def test_a_broken_error_page_still_answers_with_a_plain_500(instance: Instance, path: str) -> None:
    app = _app_whose_error_page_breaks(instance)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in response.text
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


def test_an_unexpected_error_page_carries_the_security_headers(instance: Instance) -> None:
    # Starlette answers an unhandled exception outside every middleware the app added.
    app = create_source_app(instance.settings)

    async def crash() -> None:
        raise RuntimeError("internal detail")

    app.add_api_route("/crash", crash, methods=["GET"])
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    assert "internal detail" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


@pytest.fixture
def catalogs_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An install whose .po files went missing (a package built without them, say)."""
    monkeypatch.setattr(i18n, "TRANSLATIONS_DIR", tmp_path / "no-translations")
    i18n._catalog.cache_clear()
    yield
    i18n._catalog.cache_clear()


def test_a_language_whose_catalog_is_lost_is_shown_in_english(instance: Instance, catalogs_lost: None) -> None:
    # Before, every page in that language answered 500: a source who may not come back got nothing.
    with TestClient(create_source_app(instance.settings), base_url=BASE_URL) as client:
        page = client.get("/submit", params={"lang": "es"})
        missing = client.get("/no-such-page", params={"lang": "es"})
    assert page.status_code == 200
    assert "Send" in page.text
    assert missing.status_code == 404
    assert "Page not found" in missing.text
