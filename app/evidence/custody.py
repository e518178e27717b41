"""Custody entries (docs/evidence.md, "Custody"): one hash-chained, signed line per handling of an item."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app import crypto
from app.evidence.canonical import NotCanonical, canonical, parse_canonical

CUSTODY_FORMAT = 1
SIGN_CUSTODY = b"buzon-sign-custody-v1:"
COMMIT_CUSTODY = b"buzon-commit-custody-v1:"
INSTANCE_ACTOR = "instance"
RECEIVED = "received"
DELETED = "deleted"
# The one handling the server does on its own besides intake: retention's deletions.
RETENTION = "retention"
ACTIONS = frozenset(
    {
        RECEIVED,
        "opened",
        "downloaded",
        "previewed",
        "reported",
        "exported",
        "status changed",
        "tagged",
        "noted",
        "redacted",
        DELETED,
    }
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DETAIL = re.compile(r"[ -~]{0,64}")


class BadEntry(ValueError):
    """A custody entry outside docs/evidence.md."""


@dataclass(frozen=True)
class Entry:
    instance: str
    seq: int
    prev: str
    item: str
    item_prev: str
    action: str
    detail: str
    actor: str
    key: str
    time: str
    salt: str
    sig: str = ""

    def _fields(self, *, signed: bool) -> dict[str, Any]:
        fields = {"custody": CUSTODY_FORMAT, **dataclasses.asdict(self)}
        if not signed:
            fields["sig"] = ""
        return fields

    def document(self) -> bytes:
        return canonical(self._fields(signed=True))

    def signed_part(self) -> bytes:
        """What the editor signs: the entry with ``sig`` empty."""
        return canonical(self._fields(signed=False))

    def link(self) -> str:
        return hashlib.sha256(self.document()).hexdigest()

    def commitment(self) -> bytes:
        return hashlib.sha256(COMMIT_CUSTODY + self.document()).digest()

    def signature_valid(self) -> bool:
        """For an editor's entry, whether ``sig`` is its ``key``'s; the instance's entries carry none."""
        if self.actor == INSTANCE_ACTOR:
            return self.sig == "" and self.key == ""
        try:
            signature, public = base64.b64decode(self.sig, validate=True), bytes.fromhex(self.key)
        except (binascii.Error, ValueError):
            return False
        return crypto.signature_valid(public, SIGN_CUSTODY, self.signed_part(), signature)


def new_entry(
    *,
    instance: str,
    seq: int,
    prev: str,
    item: bytes,
    item_prev: str,
    action: str,
    time: str,
    detail: str = "",
    signer: tuple[str, crypto.SigningKey] | None = None,
) -> Entry:
    """A new entry; ``signer`` is the acting editor's (username, signing key), None for the instance at intake."""
    actor, key = (signer[0], signer[1].public.hex()) if signer else (INSTANCE_ACTOR, "")
    entry = Entry(
        instance=instance,
        seq=seq,
        prev=prev,
        item=item.hex(),
        item_prev=item_prev,
        action=action,
        detail=detail,
        actor=actor,
        key=key,
        time=time,
        salt=secrets.token_hex(16),
    )
    _check(entry)
    if signer is None:
        return entry
    signature = crypto.sign(signer[1], SIGN_CUSTODY, entry.signed_part())
    return dataclasses.replace(entry, sig=base64.b64encode(signature).decode("ascii"))


def parse_entry(raw: bytes) -> Entry:
    try:
        fields = parse_canonical(raw)
    except NotCanonical as e:
        raise BadEntry(str(e)) from e
    if fields.pop("custody", None) != CUSTODY_FORMAT or set(fields) != {f.name for f in dataclasses.fields(Entry)}:
        raise BadEntry("wrong members")
    try:
        entry = Entry(**fields)
    except TypeError as e:
        raise BadEntry(str(e)) from e
    _check(entry)
    return entry


def _check(e: Entry) -> None:
    strings = (e.instance, e.prev, e.item, e.item_prev, e.action, e.detail, e.actor, e.key, e.time, e.salt, e.sig)
    if not all(isinstance(s, str) for s in strings) or not isinstance(e.seq, int) or isinstance(e.seq, bool):
        raise BadEntry("a member has the wrong type")
    ok = (
        _HEX64.fullmatch(e.instance)
        and _HEX64.fullmatch(e.item)
        and (e.prev == "" if e.seq == 0 else _HEX64.fullmatch(e.prev))
        and (e.item_prev == "" or _HEX64.fullmatch(e.item_prev))
        and e.action in ACTIONS
        and _DETAIL.fullmatch(e.detail)
        and _TIME.fullmatch(e.time)
        and _HEX32.fullmatch(e.salt)
        and (e.actor == INSTANCE_ACTOR) == (e.key == "")
        and (e.action != RECEIVED or e.actor == INSTANCE_ACTOR)
        and (e.actor != INSTANCE_ACTOR or e.action == RECEIVED or (e.action, e.detail) == (DELETED, RETENTION))
        and (e.action != RECEIVED or e.item_prev == "")
        and (e.key == "" or _HEX64.fullmatch(e.key))
        and 0 < len(e.actor) <= 64
        and e.actor.isprintable()
    )
    if not ok:
        raise BadEntry("a member is out of range")


@dataclass(frozen=True)
class ChainCheck:
    """What checking the whole chain found; ``first_broken`` is the lowest index with a problem."""

    entries: int
    problems: list[tuple[int, str]]

    @property
    def first_broken(self) -> int | None:
        return min((index for index, _ in self.problems), default=None)

    @property
    def sound(self) -> bool:
        return not self.problems


def check_chain(
    entries: Sequence[Entry | None],
    *,
    head_link: str,
    head_entries: int,
    editor_keys: dict[str, str],
    revoked: dict[str, str] | None = None,
) -> ChainCheck:
    """Check a chain given in any order against its head.

    ``editor_keys`` maps each known signing key (hex) to its editor's name;
    ``revoked`` maps a key to the day (ISO) its editor was revoked: entries
    signed on a later day are flagged. An entry that did not open is ``None``.
    """
    problems: list[tuple[int, str]] = []
    by_seq: dict[int, Entry] = {}
    unreadable = sum(1 for e in entries if e is None)
    for entry in entries:
        if entry is None:
            continue
        if entry.seq in by_seq:
            problems.append((entry.seq, "two entries claim this position: one was inserted"))
        by_seq.setdefault(entry.seq, entry)
    previous_link = ""
    for seq in range(max(head_entries, max(by_seq, default=-1) + 1)):
        entry = by_seq.get(seq)
        if entry is None:
            reason = "missing or damaged" if unreadable else "missing: it was removed"
            problems.append((seq, reason))
            previous_link = ""
            continue
        if seq >= head_entries:
            problems.append((seq, "beyond the head: it was added outside the chain"))
        if seq and previous_link and entry.prev != previous_link:
            problems.append((seq, "does not follow the entry before it: edited, reordered or replaced"))
        problems.extend((seq, p) for p in _entry_problems(entry, editor_keys, revoked or {}))
        previous_link = entry.link()
    if head_entries and by_seq.get(head_entries - 1) is not None and by_seq[head_entries - 1].link() != head_link:
        problems.append((head_entries - 1, "is not the entry the head names"))
    return ChainCheck(entries=len(entries), problems=sorted(set(problems)))


def _entry_problems(entry: Entry, editor_keys: dict[str, str], revoked: dict[str, str]) -> list[str]:
    if entry.actor == INSTANCE_ACTOR:
        return [] if entry.signature_valid() else ["an intake entry carries a signature"]
    found = []
    if not entry.signature_valid():
        found.append("its signature does not verify")
    if editor_keys.get(entry.key) != entry.actor:
        found.append("signed by a key that is not this editor's")
    until = revoked.get(entry.key)
    if until is not None and entry.time[:10] > until:
        found.append("signed after its editor was revoked")
    return found
