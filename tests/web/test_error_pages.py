"""The one table from service errors to pages."""

from __future__ import annotations

import errno

import pytest

import app.main  # noqa: F401 - loads every module that defines a service error
from app import errors
from app.services import deletion, export, invites, replies, submissions, triage
from app.web.error_pages import NOT_FOUND, PAGES, SESSION_EXPIRED, STORAGE_FULL, page_for


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
