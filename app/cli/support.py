"""What every ``buzon`` subcommand needs: settings, or a clear exit."""

from __future__ import annotations

import os
import sys

import typer
from sqlalchemy.orm import Session

from app import crypto
from app.services import keys
from app.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as e:
        typer.echo(f"Invalid configuration: {e}", err=True)
        raise typer.Exit(2) from e


def fail(message: str) -> typer.Exit:
    """Print ``message`` to stderr; the caller raises the returned exit (status 1)."""
    typer.echo(message, err=True)
    return typer.Exit(1)


def recovery_secret(*, from_stdin: bool = False, prompt: str = "Recovery secret") -> str | None:
    """BUZON_RECOVERY_SECRET, else a hidden prompt on a terminal (never when stdin carries other input)."""
    secret = os.environ.get("BUZON_RECOVERY_SECRET")
    if secret is None and not from_stdin and sys.stdin.isatty():
        secret = typer.prompt(prompt, default="", hide_input=True)
    return secret or None


def required_recovery_secret(doing: str) -> str:
    """The recovery secret, or a clear exit saying that ``doing`` needs it."""
    secret = recovery_secret()
    if secret is None:
        raise fail(f"{doing} needs the recovery secret (BUZON_RECOVERY_SECRET or the prompt).")
    return secret


def open_newsroom_keys(session: Session, secret: str) -> crypto.NewsroomKeys:
    try:
        return keys.open_with_recovery(session=session, recovery_secret=secret)
    except crypto.DecryptionError:
        raise fail("That recovery secret does not open the newsroom keys.") from None
