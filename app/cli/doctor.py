"""``buzon doctor``: print each check of app/ops/doctor.py with its fix; exit 1 on any FAIL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.settings import Settings


def register(cli: typer.Typer) -> None:
    cli.command("doctor")(run_doctor)


def _tor_address(value: str) -> tuple[str, int] | None:
    if value in ("", "none"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter("expected HOST:PORT, e.g. 127.0.0.1:9050, or 'none'")
    return host.strip("[]"), int(port)


def run_doctor(
    tor: Annotated[
        str,
        typer.Option(
            metavar="HOST:PORT", envvar="BUZON_DOCTOR_TOR", help="Tor's SOCKS or control port ('none': skip)."
        ),
    ] = "127.0.0.1:9050",
    source_hostname: Annotated[
        Path | None,
        typer.Option(metavar="FILE", envvar="BUZON_DOCTOR_SOURCE_HOSTNAME", help="The source service's hostname file."),
    ] = None,
    editor_hostname: Annotated[
        Path | None,
        typer.Option(metavar="FILE", envvar="BUZON_DOCTOR_EDITOR_HOSTNAME", help="The editor service's hostname file."),
    ] = None,
    host: Annotated[
        str, typer.Option(envvar="BUZON_DOCTOR_HOST", help="The address `buzon serve` listens on.")
    ] = "127.0.0.1",
) -> None:
    """Check this deployment (files, database, editors, Tor, onion names, clock, disk, settings)."""
    from app.ops import doctor  # with alembic: loaded for this command only, not by `buzon serve`

    try:
        settings = Settings()
    except ValueError as e:
        typer.echo(f"FAIL configuration: {e}", err=True)
        raise typer.Exit(1) from e
    options = doctor.Options(
        tor_address=_tor_address(tor),
        source_hostname=source_hostname,
        editor_hostname=editor_hostname,
        listen_host=host,
        in_container=doctor.in_container(),
    )
    results = doctor.run_checks(settings, options)
    for result in results:
        typer.echo(f"{result.status.value:<4} {result.check}: {result.detail}")
        if result.fix and result.status is not doctor.Status.OK:
            typer.echo(f"     fix: {result.fix}")
    raise typer.Exit(doctor.exit_code(results))
