"""Engine construction. Engines are made by the app factories, never at import."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # secure_delete overwrites freed pages, so a deleted tip's capsule does not
    # linger in the file; WAL lets the source app write while editors read, and
    # the busy timeout makes a writer wait for another (several processes may
    # share the file) instead of failing with "database is locked".
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()


# Per engine; each ``buzon serve`` has two (source and editor apps). Requests
# beyond the pool wait up to pool_timeout for a connection rather than fail.
POOL_SIZE = 5
POOL_MAX_OVERFLOW = 10
# Younger than the idle timeouts of typical poolers and firewalls.
POOL_RECYCLE_SECONDS = 1800


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # pre_ping replaces connections a server restart or failover has closed,
    # instead of failing the next request (a source's upload) with them.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=POOL_MAX_OVERFLOW,
        pool_recycle=POOL_RECYCLE_SECONDS,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
