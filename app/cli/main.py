"""The ``buzon`` command: init, editor add/invite/grant/revoke, key rotate, serve, passphrase."""

from __future__ import annotations

import asyncio
import enum
import sys
from typing import Annotated

import typer
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import errors
from app.cli.backup import register as register_backup
from app.cli.decrypt import register as register_decrypt
from app.cli.doctor import register as register_doctor
from app.cli.evidence import register as register_evidence
from app.cli.support import fail, load_settings, open_newsroom_keys, recovery_secret, required_recovery_secret
from app.codenames import generate_codename
from app.db.models import Editor
from app.db.session import make_engine, make_session_factory
from app.passphrases import weakness
from app.services import audit, editors, invites, keys
from app.services.housekeeping import sweep_store
from app.settings import Settings
from app.storage import BlobStore
from app.web.http_protocol import HardenedH11Protocol

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Buzón, an anonymous tip line.")
editor_cli = typer.Typer(no_args_is_help=True, help="Manage editor accounts.")
cli.add_typer(editor_cli, name="editor")
register_decrypt(cli)
register_doctor(cli)
register_backup(cli)
register_evidence(cli)
key_cli = typer.Typer(no_args_is_help=True, help="Manage the newsroom keys.")
cli.add_typer(key_cli, name="key")


@cli.command()
def init() -> None:
    """Create the data directory, the database and the newsroom keys."""
    from app.db.migrate import upgrade_database  # alembic: loaded by this command, not by `buzon serve`

    settings = load_settings()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    BlobStore(settings.store_dir, settings.store_pool).fill_pool()
    engine = make_engine(settings.resolved_database_url)
    upgrade_database(engine)
    with make_session_factory(engine)() as session:
        try:
            secret = keys.initialise_instance(
                session=session, pepper_path=settings.pepper_path, codename_kdf=settings.codename_kdf
            )
        except keys.AlreadyInitialised:
            raise fail(f"{settings.data_dir} is already initialised; nothing was changed.") from None
    typer.echo(f"Initialised Buzón in {settings.data_dir}")
    typer.echo("Write the recovery secret down and keep it offline. It is shown only this once,")
    typer.echo("and it is the only way back in if every editor passphrase is lost.")
    typer.echo(f"Recovery secret: {secret}")


def _read_passphrase(from_stdin: bool) -> str:
    if from_stdin:
        passphrase = sys.stdin.readline().rstrip("\r\n")
    else:
        passphrase = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=True)
    problem = weakness(passphrase)
    if problem:
        raise fail(f"That passphrase is too weak. {problem}")
    return passphrase


@editor_cli.command("add")
def editor_add(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the editor an admin.")] = False,
    passphrase_stdin: Annotated[bool, typer.Option("--passphrase-stdin", help="Read one line from stdin.")] = False,
) -> None:
    """Create an editor and, given the recovery secret, grant them the newsroom keys."""
    settings = load_settings()
    passphrase = _read_passphrase(passphrase_stdin)
    secret = recovery_secret(from_stdin=passphrase_stdin, prompt="Recovery secret (empty to skip the grant)")
    with make_session_factory(make_engine(settings.resolved_database_url))() as session:
        newsroom_keys = None
        if secret is not None:
            try:
                newsroom_keys = open_newsroom_keys(session, secret)
            except errors.NotInitialised:
                raise fail("Run `buzon init` first.") from None
        try:
            totp_secret = editors.add_editor(
                session=session,
                username=name,
                passphrase=passphrase,
                is_admin=admin,
                kdf=settings.editor_kdf,
                newsroom_keys=newsroom_keys,
            )
        except editors.EditorExists:
            raise fail(f"An editor named {name!r} already exists.") from None
        except editors.InvalidUsername as e:
            raise fail(str(e)) from None
    typer.echo(f"Editor {name} created{' (admin)' if admin else ''}.")
    if newsroom_keys is None:
        typer.echo("No recovery secret given: an admin must grant this editor the newsroom key.")
    typer.echo(f"TOTP secret: {totp_secret}")
    typer.echo(f"TOTP URI: {editors.totp_uri(username=name, totp_secret=totp_secret)}")


def _open_session(settings: Settings) -> Session:
    return make_session_factory(make_engine(settings.resolved_database_url))()


@editor_cli.command("invite")
def editor_invite(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make the editor an admin.")] = False,
    portal_url: Annotated[str, typer.Option(help="Base address of the editor portal.")] = "http://127.0.0.1:8081",
) -> None:
    """Print a one-time enrolment link for a new editor."""
    with _open_session(load_settings()) as session:
        try:
            token = invites.create_invite(session=session, username=name, is_admin=admin, actor=audit.CLI_ACTOR)
        except invites.InviteRefused as e:
            raise fail(str(e)) from None
    typer.echo(f"Send this link to {name} over a channel you trust. It works once, for {invites.INVITE_DAYS} days:")
    typer.echo(f"Invite link: {portal_url.rstrip('/')}/invite/{token}")


def _editor_named(session: Session, name: str) -> Editor:
    account = session.scalars(select(Editor).where(Editor.username == name)).first()
    if account is None:
        raise fail(f"There is no editor named {name!r}.")
    return account


@editor_cli.command("grant")
def editor_grant(name: str) -> None:
    """Grant an editor every newsroom key, opened with the recovery secret."""
    settings = load_settings()
    secret = required_recovery_secret("Granting from the command line")
    with _open_session(settings) as session:
        account = _editor_named(session, name)
        newsroom_keys = open_newsroom_keys(session, secret)
        keys.remember_recovery_public_key(session=session, recovery_secret=secret)
        editors.grant_access(session=session, editor_id=account.id, newsroom_keys=newsroom_keys, actor=audit.CLI_ACTOR)
    typer.echo(f"{name} can now read every tip.")


@editor_cli.command("revoke")
def editor_revoke(name: str) -> None:
    """Delete an editor's copies of the newsroom keys and end their sessions."""
    with _open_session(load_settings()) as session:
        editors.revoke_access(session=session, editor_id=_editor_named(session, name).id, actor=audit.CLI_ACTOR)
    typer.echo(f"{name} can no longer read tips. Consider `buzon key rotate` so new tips use a key they never held.")


@key_cli.command("rotate")
def key_rotate() -> None:
    """Create a new newsroom key for new tips; older keys stay for older tips."""
    with _open_session(load_settings()) as session:
        try:
            key_id = keys.rotate_and_end_logins(session=session, actor=audit.CLI_ACTOR)
        except errors.NotInitialised:
            raise fail(
                "The recovery public key is not recorded: run `buzon editor grant` once with the recovery secret."
            ) from None
    typer.echo(f"New newsroom key {key_id} is active. Every editor session has ended; logins pick up the new key.")


custody_cli = typer.Typer(no_args_is_help=True, help="The custody log (docs/evidence.md).")
cli.add_typer(custody_cli, name="custody")


@custody_cli.command("verify")
def custody_verify() -> None:
    """Check the whole custody chain with the recovery secret; name the first broken entry."""
    from app.services import custody

    secret = required_recovery_secret("Checking the custody log")
    with _open_session(load_settings()) as session:
        check = custody.verify_chain(session, open_newsroom_keys(session, secret))
    if check.sound:
        typer.echo(f"The custody chain is sound: {check.entries} entries, each following the one before.")
        return
    typer.echo(f"The custody chain is broken at entry {check.first_broken}:")
    for index, problem in check.problems:
        typer.echo(f"  entry {index}: {problem}")
    raise typer.Exit(1)


@cli.command()
def migrate() -> None:
    """Bring the database schema up to this version of Buzón (run after an upgrade)."""
    from app.db.migrate import upgrade_database

    settings = load_settings()
    upgrade_database(make_engine(settings.resolved_database_url))
    typer.echo("The database schema is up to date.")


@cli.command()
def passphrase() -> None:
    """Print a fresh 7-word passphrase."""
    typer.echo(generate_codename())


class Interface(enum.StrEnum):
    source = "source"
    editor = "editor"


@cli.command()
def serve(
    host: str = "127.0.0.1",
    source_port: Annotated[int, typer.Option(help="Port of the source interface.")] = 8080,
    editor_port: Annotated[int, typer.Option(help="Port of the editor portal.")] = 8081,
    only: Annotated[
        Interface | None,
        typer.Option(help="Run one interface only: extra source machines run 'source'."),
    ] = None,
) -> None:
    """Run the source interface and the editor portal, each on its own port."""
    from app.hardening import forbid_core_dumps
    from app.main import create_editor_app, create_source_app

    forbid_core_dumps()

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    store = BlobStore(settings.store_dir, settings.store_pool)
    swept = sweep_store(make_session_factory(engine), store)
    engine.dispose()
    store.fill_pool()  # once here: both apps would otherwise top it up together
    if swept:
        typer.echo(f"Removed {swept} unrecorded upload(s) left by an interrupted run.")
    servers = []
    if only in (None, Interface.source):
        servers.append(uvicorn.Server(_server_config(create_source_app(settings), host, source_port)))
        typer.echo(f"Source interface: http://{host}:{source_port}/")
    if only in (None, Interface.editor):
        # The editor app also runs retention, notifications and the hourly store sweep.
        servers.append(uvicorn.Server(_server_config(create_editor_app(settings), host, editor_port)))
        typer.echo(f"Editor portal:    http://{host}:{editor_port}/")
    asyncio.run(_serve_all(servers))


def _server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    # No access log, no proxy headers: the service records nothing about who connects.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=False,
        log_level="warning",
        h11_max_incomplete_event_size=64 * 1024,
        http=HardenedH11Protocol,
    )


async def _serve_all(servers: list[uvicorn.Server]) -> None:
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    cli()
