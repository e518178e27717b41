"""Alembic environment: run by app.db.migrate, or by `alembic` with -x url=..."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.db.models import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    from app.db.migrate import migration_connection
    from app.db.session import make_engine

    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass -x url=DATABASE_URL")
    with migration_connection(make_engine(url)) as fresh:
        _run(fresh)
else:
    _run(connection)
