"""Schema migrations, applied with Alembic from the first table on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class MigrationError(Exception):
    pass


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for running migrations in one transaction.

    On SQLite, batch migrations rebuild a table by copying it and dropping the
    original. With foreign keys enforced, that DROP would first delete the
    rows and cascade to every child row (submissions, items, replies...), so
    enforcement is off while migrating and the result is checked instead.
    """
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Outside any transaction: SQLite ignores this pragma inside one.
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            connection.commit()
        try:
            with connection.begin():
                yield connection
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise MigrationError("the migrated database has rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.commit()


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    with migration_connection(engine) as connection:
        command.upgrade(_config(connection), revision)
    _compact(engine)


def _compact(engine: Engine) -> None:
    """On SQLite, rewrite the file: pages then follow each table's random keys, not the order rows came in."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM")


def downgrade_database(engine: Engine, revision: str) -> None:
    with migration_connection(engine) as connection:
        command.downgrade(_config(connection), revision)
