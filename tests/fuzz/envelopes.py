"""Mutation fuzzing of every envelope parser and the offline decrypt path.

Each target takes fuzz bytes, turns them into a mutated copy of a valid
object (bit flips, byte changes, insertions, deletions, truncation, extension,
splices from a second valid object) or, for inputs starting with 0xFF, uses
them as they are. It then checks that the parser either refuses with the
documented error (``DecryptionError``; ``BundleError`` for bundles and key
files) or accepts only the untouched original: nothing tampered opens.

The default suite runs every target briefly (tests/fuzz/test_envelope_targets.py).
Large budgets are opt-in:

    python -m tests.fuzz.envelopes --examples 200000            # Hypothesis, split over the targets
    PYTHONPATH=/tmp/atheris python -m tests.fuzz.envelopes_atheris --seconds 1800  # coverage-guided

atheris is coverage-guided but not a project dependency; install it out of the
tree (``pip install --target /tmp/atheris atheris``) to use the second form.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from app import crypto
from app.crypto import BODY_CHUNK_SIZE, BODY_HEADER_SIZE, CHUNK_SIZE, DecryptionError, KdfParams
from app.formats import bundle as bundle_format
from app.ops import offline

FAST = KdfParams(time_cost=1, memory_kib=8)
PASSPHRASE = "correct horse battery staple"
SESSION_TOKEN = bytes(range(32))
_RAW = 0xFF
_OP_SIZE = 5
_MAX_OPS = 4
_real_argon2id = crypto._argon2id


def _capped_argon2id(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
    # A mutated record may ask for 4 GiB and t=16; any change still changes the derived key.
    cheap = KdfParams(min(params.time_cost, 2), min(params.memory_kib, 64), params.parallelism)
    return _real_argon2id(secret, salt, cheap)


@dataclass(frozen=True)
class Pair:
    """A valid object, and a second one of the same kind to splice from."""

    original: bytes
    other: bytes


@dataclass(frozen=True)
class World:
    keys: crypto.NewsroomKeys
    editor: crypto.KeyPair
    data_key: bytes
    recovery_secret: str
    capsule: Pair
    metadata: Pair
    small_body: Pair
    two_chunk_body: Pair
    two_chunk_content: bytes
    wrapped: Pair
    grant: Pair
    record: Pair
    session: Pair
    manifest: Pair
    key_file: Pair
    bundle: Pair
    bundle_outputs: tuple[dict[str, bytes], dict[str, bytes]]  # of the bundle and of the other one


def _body(data_key: bytes, content: bytes) -> bytes:
    sink = io.BytesIO()
    writer = crypto.BodyWriter(data_key, sink)
    writer.write(content)
    writer.finish()
    return sink.getvalue()


def _metadata(kind: str, name: str, content: bytes) -> crypto.EnvelopeMetadata:
    return crypto.EnvelopeMetadata(
        kind=kind,
        name=name,
        type="application/octet-stream" if kind == "file" else "text/plain; charset=utf-8",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        received="2025-01-01T10:00:00Z",
        sanitised="not-requested" if kind == "file" else "",
        owner="0f" * 16,
    )


def _bundle(
    newsroom: crypto.KeyPair, editor: crypto.KeyPair, recovery: crypto.KeyPair, items: list[tuple[str, str, bytes]]
) -> bytes:
    """A bundle as docs/export.md describes it, written with tarfile (no database, no store)."""
    entries, bodies = [], []
    for index, (kind, name, content) in enumerate(items):
        data_key = crypto.new_data_key()
        body = _body(data_key, content)
        entries.append(
            bundle_format.ManifestEntry(
                kind=kind,
                submission=None if kind == "reply" else 0,
                position=index,
                body_size=len(body),
                member=bundle_format.member_name(index),
                capsule=crypto.make_capsule(newsroom.public, data_key),
                sealed_metadata=crypto.seal_metadata(data_key, _metadata(kind, name, content)),
            )
        )
        bodies.append(body)
    key = bundle_format.ManifestKey(
        key_id=crypto.key_id(newsroom.public),
        public_key=newsroom.public,
        recovery_grant=crypto.seal(recovery.public, newsroom.secret),
        editor_grant=crypto.seal(editor.public, newsroom.secret),
    )
    manifest = bundle_format.bundle_manifest_json(
        bundle_format.BundleManifest("S-FUZZ", editor.public, (key,), tuple(entries))
    )
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [
            (bundle_format.BUNDLE_MANIFEST, manifest),
            *zip([e.member for e in entries], bodies, strict=True),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sink.getvalue()


@cache
def world() -> World:
    newsroom, editor = crypto.generate_keypair(), crypto.generate_keypair()
    recovery_secret = crypto.generate_recovery_secret()
    recovery = crypto.recovery_keypair(recovery_secret)
    data_key, other_key = crypto.new_data_key(), crypto.new_data_key()
    meta = _metadata("file", "ñandú «borrador».txt", b"hello")
    two_chunks = bytes(range(256)) * (CHUNK_SIZE // 256) + b"tail"
    items = [("message", "", b"the tip"), ("file", "..passwd", b"\x00file\xff"), ("reply", "", b"thanks")]
    other_items = [("message", "", b"another"), ("file", "a.txt", b"12345678"), ("reply", "", b"again")]
    key_file = {
        "format": bundle_format.KEY_FILE_FORMAT,
        "version": bundle_format.BUNDLE_VERSION,
        "username": "ana",
        "public_key": "",
        "wrapped_secret_key": "",
    }

    def key_file_bytes(keypair: crypto.KeyPair) -> bytes:
        wrapped = crypto.wrap_secret_key(keypair.secret, PASSPHRASE, FAST)
        document = {**key_file, "public_key": bundle_format._b64encode(keypair.public)}
        document["wrapped_secret_key"] = bundle_format._b64encode(wrapped)
        return json.dumps(document).encode()

    bundle = _bundle(newsroom, editor, recovery, items)
    other_bundle = _bundle(newsroom, editor, recovery, other_items)
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        manifest = tar.extractfile(bundle_format.BUNDLE_MANIFEST).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(other_bundle)) as tar:
        other_manifest = tar.extractfile(bundle_format.BUNDLE_MANIFEST).read()  # type: ignore[union-attr]
    other_editor = crypto.generate_keypair()
    return World(
        keys={crypto.key_id(newsroom.public): newsroom},
        editor=editor,
        data_key=data_key,
        recovery_secret=recovery_secret,
        capsule=Pair(crypto.make_capsule(newsroom.public, data_key), crypto.make_capsule(newsroom.public, other_key)),
        metadata=Pair(crypto.seal_metadata(data_key, meta), crypto.seal_metadata(other_key, meta)),
        small_body=Pair(_body(data_key, b"a small secret"), _body(other_key, b"a small secret")),
        two_chunk_body=Pair(_body(data_key, two_chunks), _body(other_key, two_chunks)),
        two_chunk_content=two_chunks,
        wrapped=Pair(
            crypto.wrap_secret_key(editor.secret, PASSPHRASE, FAST),
            crypto.wrap_secret_key(other_editor.secret, PASSPHRASE, FAST),
        ),
        grant=Pair(crypto.seal(editor.public, newsroom.secret), crypto.seal(editor.public, other_editor.secret)),
        record=Pair(crypto.seal_record(newsroom.public, "a note"), crypto.seal_record(newsroom.public, "other")),
        session=Pair(crypto.seal_for_session(SESSION_TOKEN, b"k" * 40), crypto.seal_for_session(SESSION_TOKEN, b"j")),
        manifest=Pair(manifest, other_manifest),
        key_file=Pair(key_file_bytes(editor), key_file_bytes(other_editor)),
        bundle=Pair(bundle, other_bundle),
        bundle_outputs=(
            {"01-message.txt": b"the tip", "passwd": b"\x00file\xff", "03-reply.txt": b"thanks"},
            {"01-message.txt": b"another", "a.txt": b"12345678", "03-reply.txt": b"again"},
        ),
    )


def mutate(pair: Pair, program: bytes) -> bytes:
    """Apply up to four edits that ``program`` encodes; 0xFF first means "these bytes as they are"."""
    if program[:1] == bytes([_RAW]):
        return program[1:]
    data = bytearray(pair.original)
    for start in range(0, min(len(program), _OP_SIZE * _MAX_OPS) - _OP_SIZE + 1, _OP_SIZE):
        op, a, b, c, value = program[start : start + _OP_SIZE]
        where = ((a << 16) | (b << 8) | c) % (len(data) + 1)
        if op & 0x80:  # headers, manifests and tags live near the start: aim there half the time
            where %= min(len(data), 4096) + 1
        match op % 9:
            case 0 if data:
                data[where % len(data)] = value
            case 1 if data:
                data[where % len(data)] ^= 1 << (value % 8)
            case 2:
                data[where:where] = bytes([value]) * (1 + value % 4)
            case 3:
                del data[where : where + 1 + value % 64]
            case 4:
                del data[where:]
            case 5:
                data += bytes([value]) * (1 + value % 32)
            case 6:  # splice the same span from the other valid object
                data[where : where + 1 + value * 4] = pair.other[where : where + 1 + value * 4]
            case 7 if len(data) > BODY_HEADER_SIZE + BODY_CHUNK_SIZE:  # move, drop or double a whole chunk
                chunk = BODY_HEADER_SIZE + BODY_CHUNK_SIZE * (
                    where % ((len(data) - BODY_HEADER_SIZE) // BODY_CHUNK_SIZE)
                )
                moved = bytes(data[chunk : chunk + BODY_CHUNK_SIZE])
                if value % 3 == 0:
                    del data[chunk : chunk + BODY_CHUNK_SIZE]
                elif value % 3 == 1:
                    data[chunk:chunk] = moved
                else:
                    data += moved
            case 8:
                data[where:where] = pair.other[where : where + 1 + value]
            case _:
                pass
    return bytes(data)


def _refused(call: Callable[[], object], *errors: type[Exception]) -> bool:
    try:
        call()
    except errors:
        return True
    return False


def _check_opens_only_original(pair: Pair, candidate: bytes, call: Callable[[], object]) -> None:
    # The other object is valid too: spliced in whole, it opens. Any blend of the two must not.
    if not _refused(call, DecryptionError):
        assert candidate in (pair.original, pair.other), "a tampered object opened"


def target_capsule(program: bytes) -> None:
    w = world()
    capsule = mutate(w.capsule, program)
    _check_opens_only_original(w.capsule, capsule, lambda: crypto.open_capsule(capsule, w.keys))


def target_metadata(program: bytes) -> None:
    w = world()
    record = mutate(w.metadata, program)
    _check_opens_only_original(w.metadata, record, lambda: crypto.open_metadata(w.data_key, record, owner=None))


def _read(data_key: bytes, body: bytes, size: int) -> bytes:
    return b"".join(crypto.read_body(data_key, io.BytesIO(body), size))


def target_body(program: bytes) -> None:
    w = world()
    two = bool(program[-1:]) and program[-1] & 1
    pair, size = (w.two_chunk_body, len(w.two_chunk_content)) if two else (w.small_body, 14)
    body = mutate(pair, program[:-1])
    _check_opens_only_original(pair, body, lambda: _read(w.data_key, body, size))


def target_wrapped_key(program: bytes) -> None:
    w = world()
    record = mutate(w.wrapped, program)
    crypto._argon2id = _capped_argon2id
    try:
        _check_opens_only_original(w.wrapped, record, lambda: crypto.unwrap_secret_key(record, PASSPHRASE))
    finally:
        crypto._argon2id = _real_argon2id


def target_grant(program: bytes) -> None:
    w = world()
    grant = mutate(w.grant, program)
    _check_opens_only_original(w.grant, grant, lambda: crypto.open_sealed_keypair(w.editor, grant))


def target_record(program: bytes) -> None:
    w = world()
    record = mutate(w.record, program)
    _check_opens_only_original(w.record, record, lambda: crypto.open_record(record, w.keys))


def target_session(program: bytes) -> None:
    w = world()
    sealed = mutate(w.session, program)
    _check_opens_only_original(w.session, sealed, lambda: crypto.open_for_session(SESSION_TOKEN, sealed))


def target_recovery_secret(program: bytes) -> None:
    text = program.decode("latin-1")
    try:
        keypair = crypto.recovery_keypair(text)
    except DecryptionError:
        return
    compact = "".join(text.split()).replace("-", "").upper()
    assert len(compact) == 32
    assert set(compact) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert keypair.public == crypto.keypair_from_secret(keypair.secret).public


def target_manifest(program: bytes) -> None:
    w = world()
    raw = mutate(w.manifest, program)
    try:
        manifest = bundle_format.parse_bundle_manifest(raw)
    except bundle_format.BundleError:
        return
    # Whatever parses re-serialises to something that parses the same (no ambiguity)...
    assert bundle_format.parse_bundle_manifest(bundle_format.bundle_manifest_json(manifest)) == manifest
    valid = [
        *bundle_format.parse_bundle_manifest(w.manifest.original).entries,
        *bundle_format.parse_bundle_manifest(w.manifest.other).entries,
    ]
    # ...and an entry whose envelope opens is byte for byte a valid one.
    for entry in manifest.entries:
        try:
            data_key = crypto.open_capsule(entry.capsule, w.keys)
            crypto.open_metadata(data_key, entry.sealed_metadata, owner=None)
        except DecryptionError:
            continue
        assert any((entry.capsule, entry.sealed_metadata) == (v.capsule, v.sealed_metadata) for v in valid), (
            "a tampered manifest entry opened"
        )


def target_key_file(program: bytes) -> None:
    w = world()
    raw = mutate(w.key_file, program)
    try:
        key_file = bundle_format.read_key_file(raw)
    except bundle_format.BundleError:
        return
    crypto.wrapped_key_params(key_file.wrapped_secret_key)  # already checked: must not raise


def target_bundle(program: bytes) -> None:
    w = world()
    raw = mutate(w.bundle, program)
    with tempfile.TemporaryDirectory(prefix="buzon-fuzz-") as scratch:
        bundle, out = Path(scratch) / "bundle.tar", Path(scratch) / "out"
        bundle.write_bytes(raw)
        try:
            report = offline.decrypt_bundle(bundle, out, recovery_secret=w.recovery_secret)
        except bundle_format.BundleError:
            assert not out.exists() or not any(out.iterdir()), "a refused bundle left files behind"
            return
        written = {p.name: p.read_bytes() for p in out.iterdir() if p.name != offline.REPORT_NAME}
        # Tar headers, JSON layout and the clear designation may change; what decrypts may not.
        assert written in w.bundle_outputs, "a tampered bundle decrypted to something else"
        assert all(entry.sha256_matches for entry in report.entries)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "capsule": target_capsule,
    "metadata": target_metadata,
    "body": target_body,
    "wrapped-key": target_wrapped_key,
    "grant": target_grant,
    "record": target_record,
    "session": target_session,
    "recovery-secret": target_recovery_secret,
    "manifest": target_manifest,
    "key-file": target_key_file,
    "bundle": target_bundle,
}


def run_hypothesis(names: list[str], examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    per_target = max(1, examples // len(names))
    programs = st.one_of(
        st.binary(min_size=_OP_SIZE, max_size=_OP_SIZE * _MAX_OPS + 1),
        st.binary(max_size=600).map(lambda raw: bytes([_RAW]) + raw),
    )
    for name in names:
        started = time.monotonic()
        run = settings(
            max_examples=per_target,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(programs)(TARGETS[name]))
        run()
        print(f"{name:16} {per_target:>8} examples  {time.monotonic() - started:8.1f} s", flush=True)


def run_atheris(names: list[str], seconds: int, runs: int, inputs: list[str]) -> None:
    """libFuzzer through atheris, guided by coverage of app.* (see tests/fuzz/envelopes_atheris.py).

    ``inputs``: files to replay (a crash kept earlier) instead of fuzzing.
    """
    atheris: Any = importlib.import_module("atheris")
    world()  # built before fuzzing starts, so its cost does not count
    chosen = [TARGETS[name] for name in names]

    def one_input(data: bytes) -> None:
        if data:
            chosen[data[0] % len(chosen)](data[1:])

    corpus = Path(tempfile.mkdtemp(prefix="buzon-fuzz-corpus-"))
    # A crashing input is kept here, for replay with the same command and the file's path.
    artifacts = Path(tempfile.gettempdir()) / "buzon-fuzz-crashes"
    artifacts.mkdir(exist_ok=True)
    try:
        args = [sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1", "-max_len=4096"]
        args += [f"-artifact_prefix={artifacts}/", *(inputs or [str(corpus)])]
        if runs:
            args.insert(1, f"-runs={runs}")
        atheris.Setup(args, one_input)
        atheris.Fuzz()
    finally:
        shutil.rmtree(corpus, ignore_errors=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.envelopes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    parser.add_argument("--examples", type=int, default=20_000, help="Hypothesis: examples over all targets")
    parser.add_argument("--seconds", type=int, default=600, help="atheris: time budget")
    parser.add_argument("--runs", type=int, default=0, help="atheris: stop after this many runs (0: no limit)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="only these (repeatable)")
    parser.add_argument("inputs", nargs="*", help="atheris: replay these inputs (kept crashes) instead of fuzzing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.engine == "atheris":
        # atheris sees only code imported under its instrumentation: start over in a module that does that.
        raise SystemExit(subprocess.call([sys.executable, "-m", "tests.fuzz.envelopes_atheris", *argv]))
    names = args.target or list(TARGETS)
    started = time.monotonic()
    run_hypothesis(names, args.examples)
    print(f"done: {len(names)} targets, {time.monotonic() - started:.0f} s, no finding", flush=True)


if __name__ == "__main__":
    main()
