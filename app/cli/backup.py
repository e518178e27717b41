"""``buzon backup`` and ``buzon restore`` (docs/operator-backups.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from app.cli.support import fail, load_settings
from app.db.session import make_engine
from app.formats.backup_archive import ArchiveError, BackupManifest

if TYPE_CHECKING:
    from app.ops.archives import ByteProgress

# backup and restore (and alembic under them) load when their command runs, so
# that `buzon serve` does not carry them for its whole life.

QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; only the summary line.")]


def register(cli: typer.Typer) -> None:
    cli.command("backup")(backup_command)
    cli.command("restore")(restore_command)


def backup_command(
    out: Annotated[Path, typer.Argument(metavar="OUT.tar", help="The archive to write; it must not exist yet.")],
    quiet: QuietOption = False,
) -> None:
    """Write a ciphertext-only archive of this instance; safe while it runs."""
    from app.ops import backup

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with _bar("Backing up", quiet) as progress:
            report = backup.write_backup(
                engine=engine,
                store_root=settings.store_dir,
                pepper_path=settings.pepper_path,
                out=out,
                progress=progress,
            )
    except backup.BackupError as e:
        raise fail(str(e)) from None
    except OSError as e:
        raise fail(f"Backup failed: {e.strerror or e}. No archive was written.") from None
    finally:
        engine.dispose()
    skipped = report.manifest.skipped_blobs
    note = f"; {skipped} item(s) deleted during the backup left out" if skipped else ""
    typer.echo(f"Wrote {out}: {_counts(report.manifest)}, {_size(report.archive_bytes)} in all{note}.")


def restore_command(
    archive: Annotated[Path, typer.Argument(metavar="ARCHIVE", help="An archive written by `buzon backup`.")],
    quiet: QuietOption = False,
) -> None:
    """Rebuild an instance from a backup, into an empty data directory and database."""
    from app.ops import restore

    settings = load_settings()
    try:
        with _bar("Restoring", quiet) as progress:
            manifest = restore.restore_backup(archive=archive, settings=settings, progress=progress)
    except restore.TargetNotEmpty as e:
        raise fail(f"{e} Nothing was changed.") from None
    except ArchiveError as e:
        raise fail(f"{e} Nothing was restored.") from None
    except OSError as e:
        raise fail(f"Restore failed: {e.strerror or e}. Nothing was restored.") from None
    typer.echo(f"Restored {_counts(manifest)} into {settings.data_dir} (schema at the latest revision).")
    typer.echo("Start the service as usual; editors and sources log in as before.")


@contextmanager
def _bar(label: str, quiet: bool) -> Iterator[ByteProgress | None]:
    if quiet:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _counts(manifest: BackupManifest) -> str:
    rows = {t.name: t.rows for t in manifest.tables}
    return (
        f"{rows.get('sources', 0)} source(s), {rows.get('items', 0)} item(s), {rows.get('replies', 0)} reply(ies), "
        f"{rows.get('editors', 0)} editor(s), {sum(rows.values())} row(s), "
        f"{len(manifest.blobs)} bod(ies) of ciphertext ({_size(manifest.blob_bytes)})"
    )


def _size(size: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {units[unit]}"
