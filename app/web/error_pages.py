"""The one table from errors to pages, and the handlers that render them.

Every failure a user can meet ends here in a generic page: its title and
advice come from this table, never from the exception, and no page carries a
stack trace or an internal identifier. An error is looked up by its class and
then by each base class in turn, so a service's own error (``SourceNotFound``)
gets the page of its kind (``NotFound``) unless the table names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from app import errors
from app.services.invites import InviteInvalid, InviteRefused
from app.services.replies import EmptyReply
from app.services.submissions import SourceGone
from app.services.triage import InvalidChange
from app.web.i18n import N_
from app.web.security import SECURITY_HEADERS


@dataclass(frozen=True)
class Page:
    status_code: int
    title: str
    advice: str


SOMETHING_WENT_WRONG = Page(400, N_("Something went wrong"), N_("Nothing was saved. Please go back and try again."))
NOT_FOUND = Page(404, N_("Page not found"), N_("The address may be mistyped, or the item was deleted."))
REQUEST_REFUSED = Page(
    403,
    N_("Request refused"),
    N_("This form must be sent from this site. Please go back, reload the page and try again."),
)
STORAGE_FULL = Page(
    507,
    N_("The tip line is out of space"),
    N_(
        "Nothing was saved. The people who run this tip line have to make room first. "
        "Please try again in a day or two; a message without files may go through sooner."
    ),
)
SESSION_EXPIRED = Page(
    401,
    N_("Your session has ended"),
    N_(
        "For your safety, sessions end after a while without activity. "
        "Use Tor Browser's New Identity, then log in again with your codename."
    ),
)

PAGES: dict[type[Exception], Page] = {
    errors.ServiceError: SOMETHING_WENT_WRONG,
    errors.NotFound: NOT_FOUND,
    errors.Forbidden: REQUEST_REFUSED,
    errors.NotLoggedIn: SESSION_EXPIRED,
    errors.Unavailable: Page(
        503, N_("We are busy right now"), N_("Nothing was saved. Please wait a minute and try again.")
    ),
    errors.NotInitialised: Page(
        503, N_("This tip line is temporarily offline"), N_("Nothing was saved. Please try again later.")
    ),
    errors.MalformedSubmission: Page(
        400,
        N_("The submission could not be read"),
        N_("It may have been cut off in transit. Nothing was saved; please go back and send it again."),
    ),
    errors.SubmissionTooLarge: Page(
        413,
        N_("The submission is too large"),
        N_("Nothing was saved. Please send fewer or smaller files, perhaps in several submissions."),
    ),
    errors.MessageTooLong: Page(
        413,
        N_("The message is too long"),
        N_("Nothing was saved. Please shorten the message, or attach it as a file."),
    ),
    errors.TooManyFiles: Page(
        413, N_("Too many files"), N_("Nothing was saved. Please send the files over several submissions.")
    ),
    errors.EmptySubmission: Page(
        400,
        N_("There was nothing to send"),
        N_("Nothing was saved. Please write a message or choose at least one file."),
    ),
    errors.FirstMessageTooShort: Page(
        400,
        N_("Please tell us a little more"),
        N_("Nothing was saved. A first submission needs a longer message; please go back and add some detail."),
    ),
    errors.StorageFull: STORAGE_FULL,
    errors.FormExpired: Page(
        403,
        N_("This form has expired"),
        N_(
            "Nothing was saved. Go back and copy your message first, because reloading empties the form. "
            "Then reload the page and send it again."
        ),
    ),
    errors.TryLater: Page(
        503,
        N_("Too many submissions right now"),
        N_("Nothing was saved. This tip line limits how much it accepts each hour; please try again later."),
    ),
    errors.CodenameNotRecognised: Page(
        401,
        N_("That codename was not recognised"),
        N_("Check each word and try again. Codenames are never stored, so we cannot look one up for you."),
    ),
    errors.SourceLoginExpired: SESSION_EXPIRED,
    # A source deleted while logged in sees their session end, not a missing page.
    SourceGone: SESSION_EXPIRED,
    EmptyReply: Page(
        400,
        N_("The reply was not sent"),
        N_("A reply must have text, at most 100,000 characters. Please go back and try again."),
    ),
    # The editor portal's own pages, in English only: not marked for translation.
    InvalidChange: Page(
        400,
        "That change was not saved",
        "Tags have 1 to 40 characters, notes 1 to 10,000, and a status or editor must be one of those offered. "
        "Please go back and try again.",
    ),
    InviteInvalid: Page(
        404, "This invitation cannot be used", "It may have expired or been used already. Ask an admin for a new link."
    ),
    InviteRefused: Page(
        400,
        "The invitation was not created",
        "Usernames have 1 to 64 printable characters and must not be taken already.",
    ),
    errors.AdminsOnly: Page(403, "Admins only", "Ask an admin of this newsroom."),
    errors.KeyNotHeld: Page(
        403,
        "You do not hold the newsroom key",
        "Nothing was changed. Only editors an admin has granted the newsroom key can triage, reply or delete.",
    ),
}

_STATUS_PAGES = {404: NOT_FOUND, 403: REQUEST_REFUSED}
_UNEXPECTED = Page(500, SOMETHING_WENT_WRONG.title, SOMETHING_WENT_WRONG.advice)

_LAST_RESORT_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Something went wrong</title></head>'
    "<body><h1>Something went wrong</h1><p>Nothing was saved. Please go back and try again.</p></body></html>"
)


def page_for(error: BaseException) -> Page:
    """The page for ``error``: its class's entry, else its nearest base class's."""
    for kind in type(error).__mro__:
        page = PAGES.get(kind)
        if page is not None:
            return page
    if errors.is_out_of_space(error):
        return STORAGE_FULL
    return _UNEXPECTED


def install_error_pages(
    app: FastAPI, templates: Jinja2Templates, before_page: Callable[[Request], Awaitable[None]] | None = None
) -> None:
    """Register handlers that render ``error.html`` for every failure."""

    def render(request: Request, page: Page, status_code: int | None = None) -> Response:
        context = {"title": page.title, "advice": page.advice}
        response: Response
        try:
            response = templates.TemplateResponse(
                request, "error.html", context, status_code=status_code or page.status_code
            )
        except Exception:
            # The error page itself failed (a broken template or catalog): a fixed
            # page, so the visitor still gets an answer and nothing internal.
            response = HTMLResponse(_LAST_RESORT_PAGE, status_code=500)
        # Starlette answers an unhandled exception outside every middleware the
        # app added, so this page brings its own headers.
        response.headers.update(SECURITY_HEADERS)
        return response

    async def on_service_error(request: Request, exc: Exception) -> Response:
        if before_page is not None:
            await before_page(request)
        return render(request, page_for(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return render(request, _STATUS_PAGES.get(exc.status_code, SOMETHING_WENT_WRONG), exc.status_code)

    async def on_invalid_request(request: Request, exc: Exception) -> Response:
        return render(request, SOMETHING_WENT_WRONG)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return render(request, page_for(exc))

    app.add_exception_handler(errors.ServiceError, on_service_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(Exception, on_unexpected)
