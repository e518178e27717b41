"""Custody entries and the chain check (docs/evidence.md, "Custody"): every edit, removal and insertion found."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import pytest

from app import crypto
from app.evidence import custody
from app.evidence.custody import BadEntry, Entry, check_chain, new_entry, parse_entry

INSTANCE = "ab" * 32
ITEM = bytes(range(32))
ANA = crypto.new_signing_key()
BEA = crypto.new_signing_key()
KEYS = {ANA.public.hex(): "ana", BEA.public.hex(): "bea"}


def _chain(n: int = 5) -> list[Entry]:
    """A received entry, then editors' handlings, alternating ana and bea."""
    entries: list[Entry] = []
    prev = item_prev = ""
    for seq in range(n):
        received = seq == 0
        signer = None if received else (("ana", ANA) if seq % 2 else ("bea", BEA))
        entry = new_entry(
            instance=INSTANCE, seq=seq, prev=prev, item=ITEM, item_prev=item_prev,
            action="received" if received else "downloaded", time=f"2026-12-0{1 + seq}T10:00:00Z", signer=signer,
        )  # fmt: skip
        entries.append(entry)
        prev = item_prev = entry.link()
    return entries


def _check(entries: Sequence[Entry | None], *, head: Entry | None = None, **kwargs: object) -> custody.ChainCheck:
    chain = [e for e in entries if e is not None]
    last = head or max(chain, key=lambda e: e.seq)
    return check_chain(entries, head_link=last.link(), head_entries=last.seq + 1, editor_keys=KEYS, **kwargs)  # type: ignore[arg-type]


def test_a_sound_chain_checks_in_any_order() -> None:
    entries = _chain()
    assert _check(entries).sound
    assert _check(list(reversed(entries))).sound
    assert all(parse_entry(e.document()) == e for e in entries)


def test_an_intake_entry_is_unsigned_and_every_editor_entry_signed() -> None:
    received, downloaded = _chain(2)
    assert (received.actor, received.key, received.sig) == ("instance", "", "")
    assert downloaded.signature_valid()
    forged = dataclasses.replace(downloaded, detail="x")  # a changed entry keeps its old signature
    assert not forged.signature_valid()


def test_a_removed_entry_is_named() -> None:
    entries = _chain()
    check = _check([e for e in entries if e.seq != 2])
    assert check.first_broken == 2
    assert (2, "missing: it was removed") in check.problems


def test_an_edited_entry_is_named_at_its_index_and_breaks_the_next() -> None:
    entries = _chain()
    entries[3] = dataclasses.replace(entries[3], action="previewed")  # still signed as "downloaded"
    check = _check(entries, head=_chain()[4])
    assert check.first_broken == 3
    assert (3, "its signature does not verify") in check.problems
    assert (4, "does not follow the entry before it: edited, reordered or replaced") in check.problems


def test_swapped_positions_are_found() -> None:
    entries = _chain()
    entries[1], entries[2] = dataclasses.replace(entries[2], seq=1), dataclasses.replace(entries[1], seq=2)
    check = _check(entries, head=_chain()[4])
    assert check.first_broken == 1


def test_an_inserted_entry_is_found_wherever_it_goes() -> None:
    entries = _chain()
    # A forger with the newsroom's public key can seal an entry, but not produce a signature or a link.
    duplicate = new_entry(instance=INSTANCE, seq=2, prev=entries[1].link(), item=ITEM, item_prev="",
                          action="received", time="2026-12-03T11:00:00Z")  # fmt: skip
    check = _check([*entries, duplicate], head=entries[4])
    assert (2, "two entries claim this position: one was inserted") in check.problems
    beyond = new_entry(instance=INSTANCE, seq=5, prev=entries[4].link(), item=ITEM, item_prev="",
                       action="received", time="2026-12-06T11:00:00Z")  # fmt: skip
    check = _check([*entries, beyond], head=entries[4])
    assert check.first_broken == 5
    assert (5, "beyond the head: it was added outside the chain") in check.problems


def test_an_unreadable_entry_is_a_gap_at_its_index() -> None:
    entries: list[Entry | None] = [*_chain()]
    entries[3] = None
    check = _check(entries, head=_chain()[4])
    assert check.first_broken == 3
    assert (3, "missing or damaged") in check.problems


def test_a_key_that_is_not_the_editors_and_one_used_after_revocation_are_flagged() -> None:
    entries = _chain()
    intruder = crypto.new_signing_key()
    forged = new_entry(instance=INSTANCE, seq=5, prev=entries[4].link(), item=ITEM, item_prev=entries[4].link(),
                       action="downloaded", time="2026-12-09T10:00:00Z", signer=("ana", intruder))  # fmt: skip
    check = _check([*entries, forged])
    assert check.problems == [(5, "signed by a key that is not this editor's")]
    # bea was revoked on the 3rd: her entry of the 5th (seq 4) is flagged, the one of the 3rd (seq 2) is not.
    check = _check(entries, revoked={BEA.public.hex(): "2026-12-03"})
    assert check.problems == [(4, "signed after its editor was revoked")]


@pytest.mark.parametrize(
    "changes",
    [
        {"action": "stolen"},
        {"seq": -1},
        {"seq": True},
        {"prev": "nothex"},
        {"time": "yesterday"},
        {"actor": "instance"},  # an editor's action passing as the intake's
        {"detail": "ñ"},
        {"item_prev": "ab" * 32},  # a received entry names no earlier one
    ],
)
def test_an_entry_outside_the_schema_is_refused(changes: dict[str, object]) -> None:
    received, downloaded = _chain(2)
    target = received if "item_prev" in changes else downloaded
    fields = {"custody": 1, **dataclasses.asdict(target), **changes}
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(BadEntry):
        parse_entry(raw)
