"""``buzon evidence package`` and ``buzon evidence verify`` (docs/evidence.md, "Packages")."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from sqlalchemy import select

from app.cli.support import fail, load_settings, open_newsroom_keys, required_recovery_secret
from app.db.models import Source
from app.db.session import make_engine, make_session_factory
from app.storage import BlobStore

evidence_cli = typer.Typer(no_args_is_help=True, help="Evidence packages (docs/evidence.md).")


def register(cli: typer.Typer) -> None:
    cli.add_typer(evidence_cli, name="evidence")


@evidence_cli.command("package")
def package_command(
    designation: Annotated[str, typer.Argument(help="The source, as the portal names it.")],
    out: Annotated[str, typer.Argument(metavar="OUT.tar", help="A new file, or - for standard output.")],
) -> None:
    """Write a source's evidence package, a tar archive, with the recovery secret.

    It holds plaintext. Send it where it should go without leaving it on the
    server: `buzon evidence package NAME - | ssh laptop 'cat > pkg.tar'`, or write
    it to encrypted media.
    """
    from app.services import evidence_package

    settings = load_settings()
    secret = required_recovery_secret("Packaging")
    if out == "-" and sys.stdout.isatty():
        raise fail("Standard output is a terminal: redirect it to a file or a pipe.")
    if out != "-" and Path(out).exists():
        raise fail(f"{out} already exists: choose a new file.")
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        source = session.scalars(select(Source).where(Source.designation == designation)).first()
        if source is None:
            raise fail(f"There is no source called {designation!r}.")
        newsroom_keys = open_newsroom_keys(session, secret)
        ca = settings.tsa_ca_file.read_bytes() if settings.tsa_ca_file is not None else None
        store = BlobStore(settings.store_dir, settings.store_pool)
        with _output(out) as stream:
            count = evidence_package.write_package(
                session=session, store=store, source_id=source.id, newsroom_keys=newsroom_keys, out=stream, tsa_ca=ca
            )
    typer.echo(f"Wrote {count} item(s). Check it with `buzon evidence verify PACKAGE.tar`.", err=True)


@contextlib.contextmanager
def _output(out: str) -> Iterator[BinaryIO]:
    if out == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with open(out, "xb") as f:
        yield f


@evidence_cli.command("verify")
def verify_command(
    package_dir: Annotated[Path, typer.Argument(metavar="PACKAGE", help="A package's tar archive, or its files.")],
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
