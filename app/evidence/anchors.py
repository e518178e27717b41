"""Daily anchors (docs/evidence.md, "Anchors"): a Merkle root over a day's commitments, stamped and signed."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from app import crypto
from app.evidence import merkle
from app.evidence.canonical import NotCanonical, b64_decode, canonical, parse_canonical

ANCHOR_FORMAT = 1
SIGN_ANCHOR = b"buzon-sign-anchor-v1:"
COMMIT_HEAD = b"buzon-commit-head-v1:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BadAnchor(ValueError):
    """An anchor record outside docs/evidence.md."""


@dataclass(frozen=True)
class Head:
    """The custody chain's newest link when the day was anchored; empty before the first entry."""

    link: str = ""
    seq: int = 0

    def commitment(self) -> bytes | None:
        if not self.link:
            return None
        return hashlib.sha256(COMMIT_HEAD + canonical({"head": self.link, "seq": self.seq})).digest()


def statement(*, instance: str, day: dt.date, leaves: list[bytes]) -> bytes:
    """The canonical statement that is stamped and signed, over ``leaves`` already sorted."""
    return canonical(
        {
            "statement": "anchor",
            "version": ANCHOR_FORMAT,
            "instance": instance,
            "day": day.isoformat(),
            "leaves": len(leaves),
            "root": merkle.root(leaves).hex(),
        }
    )


@dataclass(frozen=True)
class Anchor:
    statement: bytes
    leaves: list[bytes]  # sorted
    reply: bytes  # the authority's RFC 3161 TimeStampResp, DER
    head: Head
    signature: bytes = b""  # Ed25519 of SIGN_ANCHOR || statement by the instance key, once an editor signed

    @property
    def fields(self) -> dict[str, Any]:
        return parse_canonical(self.statement)

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.fields["day"])

    def document(self) -> bytes:
        return canonical(
            {
                "anchor": ANCHOR_FORMAT,
                "statement": self.fields,
                "leaves": [leaf.hex() for leaf in self.leaves],
                "reply": base64.b64encode(self.reply).decode("ascii"),
                "head": {"head": self.head.link, "seq": self.head.seq},
                "signature": base64.b64encode(self.signature).decode("ascii"),
            }
        )

    def proof(self, leaf: bytes) -> tuple[int, list[bytes]] | None:
        """The leaf's index and audit path, or None if this anchor does not hold it."""
        try:
            index = self.leaves.index(leaf)
        except ValueError:
            return None
        return index, merkle.audit_path(index, self.leaves)

    def signed_by(self, public_key: bytes) -> bool:
        return crypto.signature_valid(public_key, SIGN_ANCHOR, self.statement, self.signature)


def sign(anchor: Anchor, instance_key: crypto.SigningKey) -> Anchor:
    return Anchor(
        anchor.statement,
        anchor.leaves,
        anchor.reply,
        anchor.head,
        crypto.sign(instance_key, SIGN_ANCHOR, anchor.statement),
    )


def parse_anchor(raw: bytes) -> Anchor:
    """An anchor record's document, checked: its leaves sorted, counted and rooted as its statement says."""
    try:
        fields = parse_canonical(raw)
        if set(fields) != {"anchor", "statement", "leaves", "reply", "head", "signature"} or fields["anchor"] != 1:
            raise BadAnchor("wrong members")
        claimed = fields["statement"]
        leaves = [bytes.fromhex(_hex64(leaf)) for leaf in fields["leaves"]]
        head = fields["head"]
        if set(head) != {"head", "seq"} or not (head["head"] == "" or _HEX64.fullmatch(head["head"])):
            raise BadAnchor("bad head")
        anchor = Anchor(
            statement=canonical(claimed),
            leaves=leaves,
            reply=b64_decode(fields["reply"]),
            head=Head(head["head"], head["seq"]),
            signature=b64_decode(fields["signature"]),
        )
    except (NotCanonical, KeyError, TypeError, ValueError, binascii.Error) as e:
        raise BadAnchor(str(e)) from e
    _check_statement(anchor)
    return anchor


def _check_statement(anchor: Anchor) -> None:
    fields = anchor.fields
    if set(fields) != {"statement", "version", "instance", "day", "leaves", "root"} or fields["statement"] != "anchor":
        raise BadAnchor("not an anchor statement")
    if (
        fields["version"] != ANCHOR_FORMAT
        or not _DAY.fullmatch(str(fields["day"]))
        or not _HEX64.fullmatch(str(fields["instance"]))
    ):
        raise BadAnchor("bad statement")
    if not anchor.leaves or anchor.leaves != sorted(set(anchor.leaves)) or fields["leaves"] != len(anchor.leaves):
        raise BadAnchor("the leaves are not the statement's")
    if merkle.root(anchor.leaves).hex() != fields["root"]:
        raise BadAnchor("the leaves do not make the statement's root")
    head = anchor.head.commitment()
    if head is not None and head not in anchor.leaves:
        raise BadAnchor("the custody head is not among the leaves")


def _hex64(value: Any) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise BadAnchor("a leaf is not 32 bytes of hex")
    return value
