"""The two clocks of Buzón: a UTC day for anything stored in the clear, the exact time only when sealed.

A seized server must date nothing finer than a day (docs/threat-model.md), so
every date a row or a file name carries comes from ``utc_today``. The exact
time of receipt, which an editor may need, is written only inside sealed
envelope metadata, from ``sealed_receipt_time``.
"""

from __future__ import annotations

import datetime as dt


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def sealed_receipt_time() -> str:
    """The time to the second, ISO 8601 in UTC: for encrypted metadata only."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def utc_day_and_second() -> tuple[dt.date, int]:
    """Today and the seconds since its midnight, for scheduling in memory; never stored."""
    now = dt.datetime.now(dt.UTC)
    return now.date(), now.hour * 3600 + now.minute * 60 + now.second
