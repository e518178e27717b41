"""Domain errors, and the one place that turns any error into a generic page.

Pages never carry exception text, stack traces or internal identifiers.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from app.web.i18n import N_


class BuzonError(Exception):
    """Base of errors that end in a page the user is meant to read."""

    status_code = 400
    title = N_("Something went wrong")
    advice = N_("Nothing was saved. Please go back and try again.")


class SubmissionError(BuzonError):
    pass


class MalformedSubmission(SubmissionError):
    title = N_("The submission could not be read")
    advice = N_("It may have been cut off in transit. Nothing was saved; please go back and send it again.")


class SubmissionTooLarge(SubmissionError):
    status_code = 413
    title = N_("The submission is too large")
    advice = N_("Nothing was saved. Please send fewer or smaller files, perhaps in several submissions.")


class MessageTooLong(SubmissionError):
    status_code = 413
    title = N_("The message is too long")
    advice = N_("Nothing was saved. Please shorten the message, or attach it as a file.")


class TooManyFiles(SubmissionError):
    status_code = 413
    title = N_("Too many files")
    advice = N_("Nothing was saved. Please send the files over several submissions.")


class StorageFull(SubmissionError):
    status_code = 507
    title = N_("The tip line is out of space")
    advice = N_(
        "Nothing was saved. The people who run this tip line have to make room first. "
        "Please try again in a day or two; a message without files may go through sooner."
    )


# SQLite's SQLITE_FULL result code and PostgreSQL's disk_full SQLSTATE.
_SQLITE_FULL = 13
_POSTGRES_DISK_FULL = "53100"


def is_out_of_space(error: BaseException) -> bool:
    """Whether ``error``, or an error behind it, is a full disk or quota."""
    seen: BaseException | None = error
    for _ in range(10):  # causes can loop; a few levels is plenty
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        code = getattr(seen, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == _SQLITE_FULL:
            return True
        if getattr(seen, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return True
        orig = getattr(seen, "orig", None)  # SQLAlchemy wraps the driver's error
        seen = orig if isinstance(orig, BaseException) else (seen.__cause__ or seen.__context__)
    return False


class EmptySubmission(SubmissionError):
    title = N_("There was nothing to send")
    advice = N_("Nothing was saved. Please write a message or choose at least one file.")


class ServiceOffline(BuzonError):
    status_code = 503
    title = N_("This tip line is temporarily offline")
    advice = N_("Nothing was saved. Please try again later.")


class NotFound(BuzonError):
    status_code = 404
    title = N_("Page not found")
    advice = N_("The address may be mistyped, or the item was deleted.")


class CrossOriginRequest(BuzonError):
    status_code = 403
    title = N_("Request refused")
    advice = N_("This form must be sent from this site. Please go back, reload the page and try again.")


class FormExpired(BuzonError):
    status_code = 403
    title = N_("This form has expired")
    advice = N_(
        "Nothing was saved. Go back and copy your message first, because reloading empties the form. "
        "Then reload the page and send it again."
    )


class ServiceBusy(BuzonError):
    status_code = 503
    title = N_("We are busy right now")
    advice = N_("Nothing was saved. Please wait a minute and try again.")


class TryLater(BuzonError):
    status_code = 503
    title = N_("Too many submissions right now")
    advice = N_("Nothing was saved. This tip line limits how much it accepts each hour; please try again later.")


class FirstMessageTooShort(SubmissionError):
    title = N_("Please tell us a little more")
    advice = N_("Nothing was saved. A first submission needs a longer message; please go back and add some detail.")


class CodenameNotRecognised(BuzonError):
    status_code = 401
    title = N_("That codename was not recognised")
    advice = N_("Check each word and try again. Codenames are never stored, so we cannot look one up for you.")


class SourceSessionExpired(BuzonError):
    status_code = 401
    title = N_("Your session has ended")
    advice = N_(
        "For your safety, sessions end after a while without activity. "
        "Use Tor Browser's New Identity, then log in again with your codename."
    )


class EmptyReplyError(BuzonError):
    title = N_("The reply was not sent")
    advice = N_("A reply must have text, at most 100,000 characters. Please go back and try again.")


class InvalidDeskInput(BuzonError):
    # Editor portal only, which is in English: not marked for translation.
    title = "That change was not saved"
    advice = (
        "Tags have 1 to 40 characters, notes 1 to 10,000, and a status or editor must be one of those offered. "
        "Please go back and try again."
    )


_STATUS_ERRORS: dict[int, type[BuzonError]] = {404: NotFound, 403: CrossOriginRequest}


def install_error_pages(
    app: object, templates: Jinja2Templates, before_page: Callable[[Request], Awaitable[None]] | None = None
) -> None:
    """Register handlers that render ``error.html`` for every failure."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError

    assert isinstance(app, FastAPI)

    def render(request: Request, error: BuzonError, status_code: int) -> Response:
        context = {"title": error.title, "advice": error.advice}
        return templates.TemplateResponse(request, "error.html", context, status_code=status_code)

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BuzonError)
        if before_page is not None:
            await before_page(request)
        return render(request, exc, exc.status_code)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        error = _STATUS_ERRORS.get(exc.status_code, BuzonError)()
        return render(request, error, exc.status_code)

    async def on_invalid_request(request: Request, exc: Exception) -> Response:
        return render(request, BuzonError(), 400)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if is_out_of_space(exc):
            return render(request, StorageFull(), StorageFull.status_code)
        return render(request, BuzonError(), 500)

    app.add_exception_handler(BuzonError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(Exception, on_unexpected)
