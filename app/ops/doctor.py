"""``buzon doctor``: checks a deployment and says what to fix.

Each check is a plain function returning ``Result``s, so tests call them on
real temporary instances. Nothing here writes to the data directory: the
SQLite file is never created, and the database is only read.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import os
import re
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.clock import utc_today
from app.db.migrate import MIGRATIONS_DIR
from app.db.models import (
    AnchorRow,
    AuditEntry,
    Editor,
    EvidenceLeaf,
    Instance,
    KeyGrant,
    NewsroomKey,
    Note,
    Reply,
    Source,
    Submission,
)
from app.db.session import make_engine
from app.evidence import timestamps
from app.evidence.identity import fingerprint, grouped
from app.media.sandbox import Sandbox
from app.settings import MIB, Settings
from app.storage import BlobStore
from app.web import i18n

GIB = 1024**3
TOR_TIMEOUT_SECONDS = 2.0
# The floors Settings enforces unless insecure_fast_kdf is on.
MIN_EDITOR_KDF_KIB = 64 * 1024
MIN_CODENAME_KDF_KIB = 32 * 1024
_ONION = re.compile(r"[a-z2-7]{56}\.onion")
_ANY_ADDRESS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 (we look for it, we never bind it)


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Options:
    """What doctor cannot learn from Settings: how the deployment around Buzón looks."""

    tor_address: tuple[str, int] | None = ("127.0.0.1", 9050)
    source_hostname: Path | None = None
    editor_hostname: Path | None = None
    listen_host: str = "127.0.0.1"
    in_container: bool = False


def run_checks(settings: Settings, options: Options, *, today: dt.date | None = None) -> list[Result]:
    results = check_files(settings)
    results += check_database(settings, today=today or utc_today())
    results.append(check_tor(options.tor_address))
    results += check_onion_hostnames(settings, options)
    results.append(check_disk(settings.data_dir, reserve=settings.store_reserve_mib * MIB))
    results.append(check_store_pool(BlobStore(settings.store_dir, settings.store_pool)))
    results.append(check_sandbox(Sandbox(settings.sandbox_limits)))
    results.append(check_catalogs())
    results.append(check_encrypted_storage(settings.data_dir))
    results += check_config(settings, listen_host=options.listen_host, in_container=options.in_container)
    return results


def exit_code(results: list[Result]) -> int:
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def in_container() -> bool:
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists() or "container" in os.environ


# --- files ---------------------------------------------------------------------


def check_files(settings: Settings) -> list[Result]:
    """The data dir is 0700 and the secrets 0600, all owned by the user running doctor."""
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        return [Result("data directory", Status.FAIL, f"{data_dir} does not exist", "run `buzon init`")]
    results = [_check_private(data_dir, "data directory", 0o700)]
    if settings.pepper_path.exists():
        results.append(_check_private(settings.pepper_path, "pepper", 0o600))
    else:
        fix = "restore it from a backup; without it no source can log in with a codename"
        results.append(Result("pepper", Status.FAIL, f"{settings.pepper_path} is missing", fix))
    if settings.csrf_key_path.exists():
        results.append(_check_private(settings.csrf_key_path, "CSRF key", 0o600))
    else:
        results.append(Result("CSRF key", Status.OK, "not created yet; the server makes it on first start"))
    return results


def _check_private(path: Path, name: str, mode: int) -> Result:
    info = path.stat()
    if info.st_uid != os.geteuid():
        fix = f"run doctor as the service user, and `chown -R` the data directory to it ({path} is uid {info.st_uid})"
        return Result(name, Status.FAIL, f"{path} is not owned by the user running doctor", fix)
    if info.st_mode & 0o077:
        return Result(name, Status.FAIL, f"{path} is {info.st_mode & 0o777:04o}", f"chmod {mode:o} {path}")
    return Result(name, Status.OK, f"{path} is private to its owner")


# --- database ------------------------------------------------------------------


def check_database(settings: Settings, *, today: dt.date) -> list[Result]:
    """Reachable, at the newest schema, initialised, readable by an editor, and no date from the future."""
    url = settings.resolved_database_url
    problem = _database_absent(url, settings)
    if problem is not None:
        return [problem]
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            schema = _check_schema(connection)
            if schema.status is not Status.OK:
                return [schema]
            with Session(bind=connection) as session:
                return [schema, *_check_contents(session, today)]
    except SQLAlchemyError as e:
        detail = f"cannot read it ({type(e).__name__})"
        return [Result("database", Status.FAIL, detail, "check BUZON_DATABASE_URL and that the server is up")]
    finally:
        engine.dispose()


def _database_absent(url: str, settings: Settings) -> Result | None:
    if os.geteuid() == 0 and settings.data_dir.is_dir() and settings.data_dir.stat().st_uid != 0:
        # As root, SQLite could leave root-owned -wal/-shm files the service cannot open.
        fix = "run doctor as the service user, e.g. `sudo -u buzon buzon doctor`"
        return Result("database", Status.FAIL, "not checked: doctor runs as root", fix)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    # Connecting would create an empty file: look first.
    if not Path(parsed.database).is_file():
        return Result("database", Status.FAIL, f"{parsed.database} does not exist", "run `buzon init`")
    return None


def _engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "postgresql":
        return create_engine(url, connect_args={"connect_timeout": 5})
    return make_engine(url)


def _check_schema(connection: Connection) -> Result:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    current = set(MigrationContext.configure(connection).get_current_heads())
    if not current:
        return Result("database", Status.FAIL, "reachable, but it has no schema", "run `buzon init`")
    if current != heads:
        detail = f"schema {', '.join(sorted(current))}, this version needs {', '.join(sorted(heads))}"
        return Result("database", Status.FAIL, detail, "run `buzon migrate`")
    return Result("database", Status.OK, "reachable, schema up to date")


def _check_contents(session: Session, today: dt.date) -> Iterator[Result]:
    instance = session.get(Instance, 1)
    active = session.scalars(select(NewsroomKey).where(NewsroomKey.active)).first()
    if instance is None or active is None:
        yield Result("instance", Status.FAIL, "not initialised: no newsroom key", "run `buzon init`")
        return
    codename_kib = instance.codename_kdf_memory_kib
    if codename_kib < MIN_CODENAME_KDF_KIB:
        fix = "this instance was initialised with test KDF costs; make a new one with `buzon init`"
        yield Result("instance", Status.FAIL, f"codename Argon2id uses only {codename_kib} KiB", fix)
    else:
        yield Result("instance", Status.OK, f"initialised; active newsroom key {active.key_id}")
    holders = session.scalar(select(func.count()).select_from(KeyGrant).where(KeyGrant.key_id == active.key_id))
    if not holders:
        fix = "grant one: `buzon editor grant NAME` with the recovery secret"
        yield Result("editors", Status.FAIL, "no editor can read new tips", fix)
    else:
        yield Result("editors", Status.OK, f"{holders} editor(s) hold the active newsroom key")
    yield _check_clock(session, today)
    if instance.signing_public_key is not None:
        yield Result("instance key", Status.OK, f"fingerprint {grouped(fingerprint(instance.signing_public_key))}")
    yield check_anchors(session, today)


def check_anchors(session: Session, today: dt.date) -> Result:
    """Days whose receipts still wait for a time stamp (docs/evidence.md, "Anchors")."""
    name = "time stamps"
    waiting = session.scalars(select(EvidenceLeaf.day).where(EvidenceLeaf.day < today).distinct()).all()
    unsigned = session.scalar(select(func.count()).select_from(AnchorRow).where(AnchorRow.signed.is_(False))) or 0
    if waiting:
        days = ", ".join(d.isoformat() for d in sorted(waiting)[:5]) + (" …" if len(waiting) > 5 else "")
        fix = "set BUZON_TSA_URL and BUZON_TSA_CA_FILE, and check that the authority answers (through Tor by default)"
        return Result(name, Status.WARN, f"{len(waiting)} day(s) of receipts not yet time-stamped: {days}", fix)
    detail = "every past day's receipts are time-stamped"
    if unsigned:
        detail += f"; {unsigned} anchor(s) wait for an editor's login to be signed"
    return Result(name, Status.OK, detail)


def _check_clock(session: Session, today: dt.date) -> Result:
    columns = (
        NewsroomKey.created_on,
        Editor.created_on,
        Source.last_submission_on,
        Submission.created_on,
        Reply.created_on,
        Note.created_on,
        AuditEntry.day,
    )
    dates = [d for d in (session.scalar(select(func.max(c))) for c in columns) if d is not None]
    newest = max(dates, default=None)
    if newest is not None and today < newest:
        fix = "set the clock (systemd-timesyncd or chrony); Tor fails with a wrong clock too"
        return Result("clock", Status.FAIL, f"today is {today} but the database has a date of {newest}", fix)
    return Result("clock", Status.OK, f"today ({today}) is not before any date in the database")


# --- Tor and onion names ---------------------------------------------------------


def check_tor(address: tuple[str, int] | None) -> Result:
    if address is None:
        return Result("tor", Status.SKIP, "not checked (no --tor address)")
    host, port = address
    try:
        with socket.create_connection((host, port), timeout=TOR_TIMEOUT_SECONDS):
            pass
    except OSError:
        fix = "start tor (`systemctl start tor`, or `docker compose up -d tor`) or give doctor its --tor HOST:PORT"
        return Result("tor", Status.FAIL, f"nothing answers at {host}:{port}", fix)
    return Result("tor", Status.OK, f"listening at {host}:{port}")


def is_onion_address(name: str) -> bool:
    """A well-formed v3 onion name: base32 of key, checksum and version 3."""
    if not _ONION.fullmatch(name):
        return False
    raw = base64.b32decode(name.removesuffix(".onion").upper())
    public_key, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    return version == b"\x03" and checksum == expected


def check_onion_hostnames(settings: Settings, options: Options) -> list[Result]:
    source = _read_hostname("source onion", options.source_hostname)
    editor = _read_hostname("editor onion", options.editor_hostname)
    results = [source[0], editor[0]]
    if source[1] is not None and settings.onion_address != source[1]:
        fix = f"set BUZON_ONION_ADDRESS={source[1]}"
        detail = f"BUZON_ONION_ADDRESS is {settings.onion_address or 'unset'}, the source service is {source[1]}"
        results.append(Result("onion address", Status.FAIL, detail, fix))
    elif source[1] is not None:
        results.append(Result("onion address", Status.OK, "BUZON_ONION_ADDRESS matches the source service"))
    elif settings.onion_address is None:
        fix = "set BUZON_ONION_ADDRESS to the source service's hostname"
        results.append(Result("onion address", Status.WARN, "BUZON_ONION_ADDRESS is unset", fix))
    if source[1] is not None and source[1] == editor[1]:
        fix = "give the editor portal its own HiddenServiceDir, with client authorisation"
        results.append(Result("onion address", Status.FAIL, "source and editor share one onion name", fix))
    if editor[1] is not None and options.editor_hostname is not None:
        results.append(check_editor_client_auth(options.editor_hostname.parent / "authorized_clients"))
    return results


_CLIENT_AUTH_LINE = re.compile(r"^descriptor:x25519:[A-Z2-7]{52}$")


def check_editor_client_auth(directory: Path) -> Result:
    """Tor publishes a service openly when no client key loads: the portal must have one."""
    name = "editor client authorisation"
    fix = "add each editor's key to the editor service's authorized_clients/ (docs/tor.md), then reload tor"
    if not directory.is_dir():
        # Doctor often sees a copy of the hostname file (tor's directory is private).
        detail = f"no {directory} to check beside the hostname file"
        return Result(name, Status.WARN, detail, "make sure the editor service's authorized_clients/ holds a key")
    try:
        files = sorted(directory.glob("*.auth"))
        valid = [f for f in files if _CLIENT_AUTH_LINE.match(f.read_text(encoding="ascii", errors="replace").strip())]
    except OSError as e:
        return Result(name, Status.WARN, f"cannot read {directory} ({e.strerror})", "run doctor as the tor user")
    if not valid:
        return Result(name, Status.FAIL, f"no valid client key in {directory}: the editor portal is public", fix)
    return Result(name, Status.OK, f"{len(valid)} editor client key(s)")


def _read_hostname(name: str, path: Path | None) -> tuple[Result, str | None]:
    if path is None:
        return Result(name, Status.SKIP, "not checked (no hostname file given)"), None
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError as e:
        fix = "check the HiddenServiceDir path, and run doctor as a user who may read it"
        return Result(name, Status.FAIL, f"cannot read {path} ({e.strerror})", fix), None
    if not is_onion_address(text):
        fix = "stop tor, move the HiddenServiceDir aside, restore it from a backup (or let tor make a new one)"
        return Result(name, Status.FAIL, f"{path} does not hold a valid v3 onion name", fix), None
    return Result(name, Status.OK, text), text


# --- disk and configuration -------------------------------------------------------


def check_disk(path: Path, reserve: int = 0) -> Result:
    if not path.is_dir():
        return Result("disk", Status.SKIP, "no data directory")
    usage = shutil.disk_usage(path)
    return assess_disk(total=usage.total, free=usage.free, reserve=reserve)


def assess_disk(*, total: int, free: int, reserve: int = 0) -> Result:
    detail = f"{free / GIB:.1f} GiB free of {total / GIB:.1f} GiB"
    if free <= reserve:
        fix = "free space or grow the disk now: sources get an 'out of space' page"
        return Result("disk", Status.FAIL, f"{detail}, within the store_reserve_mib reserve", fix)
    if free < 5 * GIB or free < total / 10:
        return Result("disk", Status.WARN, detail, "free space or grow the disk: uploads fail when it fills")
    return Result("disk", Status.OK, detail)


def check_sandbox(sandbox: Sandbox) -> Result:
    """Whether the parser worker starts, and whether it could leave the network (app/media/worker.py)."""
    name = "parser sandbox"
    answer = sandbox.run({"task": "strip"}, b"a plain line of text\n", max_payload=1024)
    if answer is None:
        fix = "check that `python -I -m app.media.worker` runs as the service user"
        return Result(name, Status.FAIL, "the worker does not start: every file is kept as sent, marked failed", fix)
    if answer.header.get("network_isolated") is not True:
        detail = "workers parse files with the host's network: the kernel or container refuses network namespaces"
        fix = (
            "allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1); "
            "under Docker, a seccomp profile that permits unshare"
        )
        return Result(name, Status.WARN, detail, fix)
    limits = sandbox.limits
    detail = f"each file in its own process: no network, {limits.memory_bytes // MIB} MiB, {limits.cpu_seconds} s CPU"
    return Result(name, Status.OK, detail)


def check_catalogs(locales: Iterable[str] = i18n.LOCALE_NAMES) -> Result:
    """Whether every shipped language's catalog reads: a broken one is shown in English."""
    broken = []
    for locale in locales:
        if locale == i18n.DEFAULT_LOCALE:
            continue
        try:
            i18n.compile_catalog(locale)
        except (OSError, ValueError):
            broken.append(locale)
    if broken:
        fix = "reinstall Buzón: the package lost its app/translations .po files"
        return Result("languages", Status.FAIL, f"shown in English instead: {', '.join(broken)}", fix)
    return Result("languages", Status.OK, ", ".join(sorted(locales)))


def check_store_pool(store: BlobStore) -> Result:
    """Free slots left for today's bodies (docs/storage.md, "The pool of free slots")."""
    name = "store pool"
    if not store.root.is_dir():
        return Result(name, Status.SKIP, "no ciphertext store")
    free, target = store.free_slots(), store.pool_size
    detail = f"{free} free slot(s) for new bodies; topped up to {target} each UTC day"
    if free < target // 4:
        fix = "raise BUZON_STORE_POOL above a busy day's messages, files and replies"
        return Result(name, Status.WARN, f"{detail}: a batch made mid-day dates the bodies in it", fix)
    return Result(name, Status.OK, detail)


SYS_DEV_BLOCK = Path("/sys/dev/block")
_NOT_ENCRYPTED_FIX = (
    "put the data directory on a LUKS (dm-crypt) volume: a server seized while off then yields nothing; "
    "ignore this if the host or the disk itself encrypts it"
)


def check_encrypted_storage(data_dir: Path, sys_dev_block: Path = SYS_DEV_BLOCK) -> Result:
    """Whether the data directory lives on dm-crypt, directly or under LVM or RAID."""
    name = "encrypted storage"
    if not data_dir.is_dir():
        return Result(name, Status.SKIP, "no data directory")
    device = data_dir.stat().st_dev
    node = sys_dev_block / f"{os.major(device)}:{os.minor(device)}"
    if not node.exists():
        detail = (
            "cannot tell which disk holds the data directory (a container's overlay, tmpfs or a network filesystem)"
        )
        return Result(name, Status.SKIP, detail, "check that the host keeps this volume on an encrypted disk")
    if is_encrypted_block_device(node):
        return Result(name, Status.OK, "the data directory is on a dm-crypt volume")
    return Result(name, Status.WARN, "the data directory is on a disk that is not dm-crypt", _NOT_ENCRYPTED_FIX)


def is_encrypted_block_device(node: Path, depth: int = 0) -> bool:
    """A dm-crypt mapping, or a device mapper stack (LVM, RAID) all of whose parts rest on one."""
    uuid = node / "dm" / "uuid"
    if uuid.is_file() and uuid.read_text().startswith("CRYPT-"):
        return True
    slaves = sorted((node / "slaves").iterdir()) if (node / "slaves").is_dir() else []
    if not slaves or depth > 8:
        return False
    return all(is_encrypted_block_device(slave.resolve(), depth + 1) for slave in slaves)


def check_config(settings: Settings, *, listen_host: str, in_container: bool) -> list[Result]:
    results = [_check_kdf(settings), _check_strip_memory(settings), check_timestamping(settings)]
    if listen_host.strip("[]") in _ANY_ADDRESS and not in_container:
        fix = "serve on 127.0.0.1 (`buzon serve --host 127.0.0.1`) and let tor connect locally"
        results.append(Result("listen address", Status.FAIL, f"{listen_host or '*'} listens on every interface", fix))
    else:
        where = " inside a container" if in_container else ""
        results.append(Result("listen address", Status.OK, f"{listen_host}{where}"))
    return results


def check_timestamping(settings: Settings) -> Result:
    """Whether receipts will be anchored by an RFC 3161 authority, and how it is reached."""
    name = "time-stamping authority"
    if not settings.tsa_url:
        fix = "set BUZON_TSA_URL and BUZON_TSA_CA_FILE (docs/evidence.md): without them no receipt gets trusted time"
        return Result(name, Status.WARN, "not configured: receipts are kept but never time-stamped", fix)
    ca_file = settings.tsa_ca_file
    try:
        roots = timestamps.load_roots(ca_file.read_bytes()) if ca_file is not None else []
    except (OSError, timestamps.BadTimestamp):
        roots = []
    if not roots:
        fix = "point BUZON_TSA_CA_FILE at the authority's CA certificates (PEM)"
        return Result(name, Status.FAIL, f"no readable CA bundle for {settings.tsa_url}", fix)
    route = "through Tor" if settings.tsa_via_tor else "over clearnet (BUZON_TSA_VIA_TOR=false)"
    return Result(name, Status.OK, f"{settings.tsa_url}, {route}, {len(roots)} trusted CA certificate(s)")


def _check_kdf(settings: Settings) -> Result:
    if settings.insecure_fast_kdf:
        fix = "unset BUZON_INSECURE_FAST_KDF; it exists for the test suite"
        return Result("KDF", Status.FAIL, "insecure_fast_kdf is on", fix)
    weak = (
        settings.editor_kdf_memory_kib < MIN_EDITOR_KDF_KIB or settings.codename_kdf_memory_kib < MIN_CODENAME_KDF_KIB
    )
    if weak:  # unreachable through Settings today; kept in case its floors move
        return Result("KDF", Status.FAIL, "Argon2id memory below the floors", "raise the BUZON_*_KDF_MEMORY_KIB values")
    editor, codename = settings.editor_kdf, settings.codename_kdf
    detail = f"editor t={editor.time_cost} m={editor.memory_kib} KiB, codename t={codename.time_cost}"
    return Result("KDF", Status.OK, f"{detail} m={codename.memory_kib} KiB")


def _check_strip_memory(settings: Settings) -> Result:
    budget, each = settings.strip_memory_budget_bytes, settings.max_strip_bytes
    if each == 0:
        fix = "set BUZON_MAX_STRIP_BYTES (e.g. 33554432) so photos lose their location data"
        return Result("strip memory", Status.WARN, "metadata stripping is off", fix)
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    detail = f"{budget // (1024 * 1024)} MiB for up to {budget // each} files of {each // (1024 * 1024)} MiB"
    if budget + settings.max_concurrent_kdf * settings.codename_kdf_memory_kib * 1024 > ram / 2:
        fix = "lower BUZON_STRIP_MEMORY_BUDGET_BYTES or add memory"
        return Result("strip memory", Status.WARN, f"{detail}: over half of the {ram // GIB} GiB of RAM", fix)
    return Result("strip memory", Status.OK, detail)
