"""RFC 3161 time stamps of anchor statements (docs/evidence.md, "Time stamp").

Built and checked with rfc3161-client; no network here. The authority is sent
SHA-256 of the anchor statement and nothing else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

SHA256_OID = "2.16.840.1.101.3.4.2.1"


class BadTimestamp(ValueError):
    """A reply that is not a valid time stamp of this statement by a trusted authority."""


@dataclass(frozen=True)
class TimestampRequest:
    der: bytes
    nonce: int


def request_for(statement: bytes) -> TimestampRequest:
    """A request for SHA-256 of ``statement``, with a random nonce and the signer's certificate asked for."""
    builder = TimestampRequestBuilder().data(statement).hash_algorithm(HashAlgorithm.SHA256)
    request = builder.nonce(nonce=True).cert_request(cert_request=True).build()
    assert request.nonce is not None
    return TimestampRequest(der=request.as_bytes(), nonce=request.nonce)


def load_roots(pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as e:
        raise BadTimestamp("no certificate in the CA bundle") from e


def check_reply(
    reply: bytes, statement: bytes, roots: list[x509.Certificate], *, nonce: int | None = None
) -> dt.datetime:
    """The time the authority vouches for, if ``reply`` stamps ``statement`` under one of ``roots``.

    With ``nonce`` (the server, just after asking), the reply must answer that request.
    Without it (a verifier, later), any valid stamp of the statement will do.
    """
    response = _decode(reply)
    if response.tst_info.message_imprint.hash_algorithm.dotted_string != SHA256_OID:
        raise BadTimestamp("the stamp is not over SHA-256")
    digest = hashlib.sha256(statement).digest()
    failures = []
    for root in roots:
        builder = VerifierBuilder().add_root_certificate(root)
        if nonce is not None:
            builder = builder.nonce(nonce)
        try:
            builder.build().verify(response, digest)
        except VerificationError as e:
            failures.append(str(e))
            continue
        return response.tst_info.gen_time.astimezone(dt.UTC)
    raise BadTimestamp("; ".join(failures) or "no trusted root")


def stamp_time(reply: bytes) -> dt.datetime:
    """The time a reply claims, unchecked: for showing, never for trusting."""
    return _decode(reply).tst_info.gen_time.astimezone(dt.UTC)


def _decode(reply: bytes) -> TimeStampResponse:
    try:
        return decode_timestamp_response(reply)
    except ValueError as e:
        raise BadTimestamp("not an RFC 3161 time-stamp response") from e
