"""``buzon decrypt``: open an exported bundle on an offline machine (docs/export.md).

It reads only the bundle and a key file: no settings, no database, no data dir.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from app.cli.support import fail
from app.formats import bundle as bundle_format

# Smaller bodies decrypt in a blink; a bar would only flicker.
PROGRESS_MIN_BYTES = 1024 * 1024


def register(cli: typer.Typer) -> None:
    cli.command("decrypt")(decrypt)


def decrypt(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="The .tar bundle exported from the editor portal.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", help="New or empty directory to write into (default: BUNDLE without .tar)."
        ),
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", metavar="FILE", help="Your editor key file (asks its passphrase).")
    ] = None,
    recovery: Annotated[
        bool, typer.Option("--recovery", help="Use the recovery secret instead of a key file.")
    ] = False,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the passphrase or recovery secret from one line of stdin.")
    ] = False,
) -> None:
    """Decrypt a source's bundle with your key file and passphrase, or with the recovery secret."""
    from app.ops import offline  # loaded by this command, not by `buzon serve`

    if (key_file is None) == (not recovery):
        raise fail("Give either --key-file FILE or --recovery.")
    key_bytes = None
    if key_file is not None:
        key_bytes = _read_key_file(key_file)
        username = _parse_key_file(key_bytes).username
        secret = _read_secret(f"Passphrase of {username}", secret_stdin)
    else:
        secret = _read_secret("Recovery secret", secret_stdin)
    out_dir = out or _default_out_dir(bundle)
    try:
        with Progress(*_COLUMNS, console=Console(stderr=True), transient=True) as progress:
            report = offline.decrypt_bundle(
                bundle,
                out_dir,
                key_file=key_bytes,
                passphrase=secret if key_bytes is not None else None,
                recovery_secret=None if key_bytes is not None else secret,
                progress=_Bars(progress),
            )
    except bundle_format.BundleError as e:
        raise fail(f"{e} Nothing was written.") from None
    except OSError as e:
        raise fail(f"Cannot decrypt {bundle}: {e.strerror or e}. Nothing was written.") from None
    typer.echo(offline.report_text(report))
    typer.echo(f"Decrypted {len(report.entries)} item(s) into {out_dir}; this report is in {offline.REPORT_NAME}.")


_COLUMNS = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())


class _Bars:
    """A progress bar for each large body, fed by ``decrypt_bundle``."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        if total < PROGRESS_MIN_BYTES:
            return
        task = self._tasks.get(name)
        if task is None:
            # File names come from sources: escape them, or "[" would be read as rich markup.
            task = self._tasks[name] = self._progress.add_task(escape(name), total=total)
        self._progress.update(task, completed=done)


def _default_out_dir(bundle: Path) -> Path:
    return bundle.with_suffix("") if bundle.suffix == ".tar" else bundle.with_name(f"{bundle.name}-decrypted")


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(bundle_format.MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise fail(f"Cannot read {path}: {e.strerror or e}.") from None


def _parse_key_file(raw: bytes) -> bundle_format.EditorKeyFile:
    try:
        return bundle_format.read_key_file(raw)
    except bundle_format.BundleError as e:
        raise fail(str(e)) from None


def _read_secret(label: str, from_stdin: bool) -> str:
    # Never echoed and never part of any message: prompts hide input, errors name no secret.
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    secret: str = typer.prompt(label, hide_input=True)
    return secret
