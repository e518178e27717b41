"""``buzon evidence package`` and ``buzon evidence verify`` (docs/evidence.md, "Packages")."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from app import crypto
from app.cli.support import fail, load_settings
from app.db.models import Source
from app.db.session import make_engine, make_session_factory
from app.storage import BlobStore

evidence_cli = typer.Typer(no_args_is_help=True, help="Evidence packages (docs/evidence.md).")


def register(cli: typer.Typer) -> None:
    cli.add_typer(evidence_cli, name="evidence")


def _recovery_secret() -> str | None:
    secret = os.environ.get("BUZON_RECOVERY_SECRET")
    if secret is None and sys.stdin.isatty():
        secret = typer.prompt("Recovery secret", default="", hide_input=True)
    return secret or None


@evidence_cli.command("package")
def package_command(
    designation: Annotated[str, typer.Argument(help="The source, as the portal names it.")],
    out: Annotated[Path, typer.Argument(help="A new directory for the package.")],
) -> None:
    """Write a source's evidence package into the new directory OUT, with the recovery secret.

    The package holds plaintext: write it only to encrypted media, on a machine you trust.
    """
    from app.services import evidence_package, keys

    settings = load_settings()
    secret = _recovery_secret()
    if secret is None:
        raise fail("Packaging needs the recovery secret (BUZON_RECOVERY_SECRET or the prompt).")
    if out.exists():
        raise fail(f"{out} already exists: choose a new directory.")
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        source = session.scalars(select(Source).where(Source.designation == designation)).first()
        if source is None:
            raise fail(f"There is no source called {designation!r}.")
        try:
            newsroom_keys = keys.open_with_recovery(session=session, recovery_secret=secret)
        except crypto.DecryptionError:
            raise fail("That recovery secret does not open the newsroom keys.") from None
        ca = settings.tsa_ca_file.read_bytes() if settings.tsa_ca_file is not None else None
        count = evidence_package.write_package(
            session=session,
            store=BlobStore(settings.store_dir, settings.store_pool),
            source_id=source.id,
            newsroom_keys=newsroom_keys,
            out=out,
            tsa_ca=ca,
        )
    typer.echo(f"Wrote {count} item(s) to {out}. Check it with `buzon evidence verify {out}`.")


@evidence_cli.command("verify")
def verify_command(
    package_dir: Annotated[Path, typer.Argument(metavar="PACKAGE", help="An opened evidence package.")],
    tsa_ca: Annotated[Path | None, typer.Option(help="The time-stamping authority's CA certificates (PEM).")] = None,
) -> None:
    """Check an opened evidence package offline: no server, no database, no secret. Exits 1 on any failure."""
    from app.evidence import package, timestamps

    roots = timestamps.load_roots(tsa_ca.read_bytes()) if tsa_ca is not None else None
    if roots is None:
        typer.echo("No --tsa-ca given: time stamps are checked against the package's own tsa/ca.pem, which shows")
        typer.echo("only that they chain to what the newsroom configured. Pass the authority's CA to trust them.")
    try:
        verdicts = package.verify_package(package_dir, roots)
    except package.BadPackage as e:
        raise fail(f"This is not a whole evidence package: {e}.") from None
    for verdict in verdicts:
        when = f", time-stamped {verdict.stamped_at:%Y-%m-%d %H:%M:%S} UTC" if verdict.stamped_at else ""
        typer.echo(f"item {verdict.n} ({verdict.name}): {'verified' if verdict.verified else 'NOT VERIFIED'}{when}")
        for failure in verdict.failures:
            typer.echo(f"  failure: {failure}")
        for note in verdict.notes:
            typer.echo(f"  note: {note}")
    if not all(v.verified for v in verdicts):
        raise typer.Exit(1)
