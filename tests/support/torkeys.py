"""Directory-authority keys for the private test network, cached between runs,
and the public directories compiled into tor, which the network must never name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.torcontrol import LOOPBACK, TorNetError


@dataclass(frozen=True)
class AuthorityKeys:
    keys_dir: Path
    v3ident: str
    fingerprint: str


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "buzon-tornet" / "v1"


def _read_authority(directory: Path) -> AuthorityKeys | None:
    certificate = directory / "keys" / "authority_certificate"
    fingerprint_file = directory / "fingerprint"
    if not certificate.exists() or not fingerprint_file.exists():
        return None
    text = certificate.read_text()
    expires = re.search(r"^dir-key-expires (.+)$", text, re.M)
    v3ident = re.search(r"^fingerprint ([0-9A-F]{40})$", text, re.M)
    if expires is None or v3ident is None:
        return None
    if datetime.fromisoformat(expires.group(1)).replace(tzinfo=UTC) < datetime.now(UTC) + timedelta(days=30):
        return None
    return AuthorityKeys(directory / "keys", v3ident.group(1), fingerprint_file.read_text().split()[1])


def _generate_authority(tor: str, gencert: str, directory: Path, empty: Path) -> subprocess.Popen[bytes]:
    """Start RSA keygen for one authority: tor-gencert, then tor for the relay keys."""
    keys = directory / "keys"
    keys.mkdir(mode=0o700, parents=True)
    torrc = directory / "torrc"
    torrc.write_text(f"DataDirectory {directory}\nORPort {LOOPBACK}:1 IPv4Only\nDisableNetwork 1\nLog warn stdout\n")
    gencert_command = (
        f"{gencert} --create-identity-key -m 12 --passphrase-fd 0 -i {keys}/authority_identity_key"
        f" -s {keys}/authority_signing_key -c {keys}/authority_certificate </dev/null"
    )
    fingerprint_command = f"{tor} --defaults-torrc {empty} -f {torrc} --list-fingerprint"
    return subprocess.Popen(
        ["sh", "-ec", f"{gencert_command}\n{fingerprint_command}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def authority_keys(tor: str, gencert: str, empty: Path, count: int = 3) -> list[AuthorityKeys]:
    """Authority keys cached between runs: RSA keygen takes 5-80 s on a loaded machine."""
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [cache / f"auth{i}" for i in range(count)]
    jobs = []
    for final in wanted:
        if _read_authority(final) is None:
            shutil.rmtree(final, ignore_errors=True)
            work = Path(tempfile.mkdtemp(dir=cache, prefix="new-"))
            jobs.append((final, work, _generate_authority(tor, gencert, work, empty)))
    for final, work, job in jobs:
        output, _ = job.communicate(timeout=300)
        if job.returncode != 0:
            raise TorNetError(f"authority keygen failed:\n{output.decode(errors='replace')}")
        try:
            # Atomic, so that two test sessions sharing the cache never see half a key set.
            work.rename(final)
        except OSError:
            shutil.rmtree(work)
    found = [_read_authority(final) for final in wanted]
    if any(keys is None for keys in found):
        raise TorNetError(f"unusable authority keys in {cache}")
    return [keys for keys in found if keys is not None]


def public_directories(tor: str) -> tuple[set[str], set[str]]:
    """Nicknames and IPv4 addresses of the public authorities and fallbacks compiled into tor."""
    data = Path(tor).read_bytes()
    names: set[str] = set()
    addresses: set[str] = set()
    for run in re.findall(rb"[\x20-\x7e]{20,}", data):
        if b"orport=" not in run:
            continue
        text = run.decode()
        if "v3ident=" in text:
            names.add(text.split()[0])
        addresses.update(re.findall(r"\b(\d{1,3}(?:\.\d{1,3}){3}):\d+\b", text))
    return names, addresses
