"""The errors services raise, by kind. What each one looks like is app/web/error_pages.py's business.

A service raises one of a few kinds (not found, invalid input, conflict, not
initialised, unavailable, forbidden, not logged in), usually as a subclass named for its own rule. The
web layer maps each class to one generic page in one table; nothing here
knows about HTTP, and no page ever carries an exception's text.
"""

from __future__ import annotations

import errno


class ServiceError(Exception):
    """Base of errors that end in a page the user is meant to read."""


class NotFound(ServiceError):
    """No such thing, or not one this caller may see (the two look the same on purpose)."""


class InvalidInput(ServiceError):
    """The request asked for something outside the rules; nothing was changed."""


class Conflict(ServiceError):
    """The request clashes with what exists already; nothing was changed."""


class NotInitialised(ServiceError):
    """The instance has no newsroom key yet, or its keys cannot be used."""


class Unavailable(ServiceError):
    """Not now: the service is busy or over a budget; trying later may work."""


class Forbidden(ServiceError):
    """This caller may not do this."""


class NotLoggedIn(ServiceError):
    """The caller must log in (again) first: a codename that opens nothing, a login that ended."""


# --- a submission on its way in ---------------------------------------------------------


class SubmissionError(InvalidInput):
    pass


class MalformedSubmission(SubmissionError):
    pass


class SubmissionTooLarge(SubmissionError):
    pass


class MessageTooLong(SubmissionError):
    pass


class TooManyFiles(SubmissionError):
    pass


class UploadTooSlow(MalformedSubmission):
    """The upload stalled or crawled: it was ended so it cannot hold a thread and memory for ever."""


class EmptySubmission(SubmissionError):
    pass


class FirstMessageTooShort(SubmissionError):
    pass


class StorageFull(Unavailable):
    """The disk, or the reserve kept free on it, is full."""


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


# --- requests that the web layer refuses -------------------------------------------------


class ServiceBusy(Unavailable):
    pass


class TryLater(Unavailable):
    pass


class CrossOriginRequest(Forbidden):
    pass


class FormExpired(Forbidden):
    pass


class AdminsOnly(Forbidden):
    pass


class KeyNotHeld(Forbidden):
    """An editor who does not hold the active newsroom key tried to change something."""


class CodenameNotRecognised(NotLoggedIn):
    pass


class SourceLoginExpired(NotLoggedIn):
    pass
