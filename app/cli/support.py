"""What every ``buzon`` subcommand needs: settings, or a clear exit."""

from __future__ import annotations

import typer

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
