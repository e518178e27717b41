"""Housekeeping in the editor app: retention and the store sweep, hourly."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.background import run_periodically
from app.services.housekeeping import sweep_store
from app.services.retention import apply_retention
from app.settings import Settings
from app.storage import BlobStore

INTERVAL_SECONDS = 3600


def _run_once(factory: sessionmaker[Session], store: BlobStore, retention_days: int) -> None:
    with factory() as session:
        apply_retention(session=session, store=store, retention_days=retention_days)


def install_retention(app: FastAPI) -> None:
    """Run retention at start-up and then hourly, if ``retention_days`` is set."""
    settings: Settings = app.state.settings
    retention_days = settings.retention_days
    if retention_days is None:
        return

    def job() -> None:
        _run_once(app.state.session_factory, app.state.store, retention_days)

    run_periodically(app, lambda: job, every_seconds=INTERVAL_SECONDS, run_at_start=True, name="retention run")


def install_store_sweep(app: FastAPI) -> None:
    """Hourly, remove bodies that a crashed process (perhaps another one) left unrecorded.

    ``buzon serve`` sweeps once before it starts serving; this catches crashes
    of other processes that share the store and are not restarted.
    """

    def job() -> None:
        sweep_store(app.state.session_factory, app.state.store)

    run_periodically(app, lambda: job, every_seconds=INTERVAL_SECONDS, run_at_start=False, name="store sweep")
