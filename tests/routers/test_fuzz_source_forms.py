"""Hypothesis against a real source interface: hostile uploads, logins, follow-ups and reply deletions.

One ``buzon serve`` serves the whole module. Every example must get a page
under 500 that shows nothing internal, leave no traceback in the server log,
and leave the store and database as they were or holding exactly one more
complete submission. BUZON_FUZZ_EXAMPLES raises the number of examples.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.db.session import make_engine, make_session_factory
from app.services import keys, replies, sources
from app.storage import BlobStore
from tests.fuzz.live import FUZZ, FUZZ_SETTINGS, Watch, parse_status, raw_exchange, start_module_server
from tests.fuzz.multipart import HOSTILE_NAMES, MultipartRequest, multipart_requests
from tests.support import LiveServer, SettingsFactory, codename_in, csrf_token_in, initialise, submit_tip

TOKENS = st.sampled_from(["valid", "valid", "valid", "missing", "garbage", "foreign"])
# h11 refuses control characters in a header value before sending; the raw-socket test sends those.
_NO_CTL = bytes.maketrans(bytes([*range(32), 127]), b" " * 33)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, make_settings: SettingsFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("fuzz-source")
    yield from start_module_server(initialise(make_settings(root / "data", **FUZZ_SETTINGS)), root)


@pytest.fixture(scope="module")
def watch(server: LiveServer) -> Iterator[Watch]:
    watch = Watch(server)
    yield watch
    watch.check_log()
    watch.close()


@pytest.fixture(scope="module")
def anon(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def submit_url(server: LiveServer, anon: httpx.Client) -> str:
    return server.submit_url(anon)


@pytest.fixture(scope="module")
def codename(server: LiveServer) -> str:
    with httpx.Client(timeout=60) as client:
        return codename_in(submit_tip(server, client, "the first tip of a returning source").text)


@pytest.fixture(scope="module")
def login_codename(server: LiveServer) -> str:
    """A source of its own for the login fuzzer: each login of a codename ends its earlier one."""
    with httpx.Client(timeout=60) as client:
        return codename_in(submit_tip(server, client, "a source the login fuzzer logs in as").text)


@pytest.fixture(scope="module")
def source_client(server: LiveServer, codename: str) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        response = server.post_form(client, server.source_url, "/login", "/login", {"codename": codename})
        assert response.status_code == 303
        yield client


@pytest.fixture(scope="module")
def reply_id(server: LiveServer, source_client: httpx.Client, codename: str) -> str:
    settings = server.instance.settings
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        found = sources.find_source(
            session=session,
            codename=codename,
            pepper=keys.load_pepper(settings.pepper_path),
            kdf=keys.codename_kdf(session),
        )
        assert found is not None
        replies.send_reply(
            session=session,
            store=BlobStore(settings.store_dir),
            source=found[0],
            text="a reply from the newsroom",
            newsroom_public_key=keys.active_public_key(session),
        )
    engine.dispose()
    page = source_client.get(f"{server.source_url}/home").text
    return page.split('action="/replies/', 1)[1].split("/delete", 1)[0]


def _with_token(server: LiveServer, valid_url: str, token: str) -> str:
    return {
        "valid": valid_url,
        "missing": f"{server.source_url}/submit",
        "garbage": f"{server.source_url}/submit?csrf_token=%00%FF{'A' * 80}",
        "foreign": f"{server.source_url}/submit?csrf_token=AAAAAAAAAAAAAAAAAAAAAAAAAAA%3D",
    }[token]


def _post_upload(
    server: LiveServer, watch: Watch, client: httpx.Client, url: str, upload: MultipartRequest, *, returning: bool
) -> None:
    before = watch.snapshot()
    response = client.post(url, content=upload.body, headers={b"Content-Type": upload.content_type})
    watch.check_page(response.status_code, response.content)
    if "csrf_token=" not in url or "%00" in url or "AAAA" in url:
        assert response.status_code == 403
        assert watch.snapshot() == before
    watch.check_store(before, new_source=not returning)
    watch.check_log()


@FUZZ
@given(upload=multipart_requests(), token=TOKENS)
def test_submit_survives_hostile_multipart(
    server: LiveServer, watch: Watch, anon: httpx.Client, submit_url: str, upload: MultipartRequest, token: str
) -> None:
    _post_upload(server, watch, anon, _with_token(server, submit_url, token), upload, returning=False)


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=4000), st.binary(min_size=17_000, max_size=20_000)),
    content_type=st.one_of(
        st.sampled_from([b"multipart/form-data; boundary=x", b"application/x-www-form-urlencoded", b"text/plain"]),
        st.binary(max_size=120).map(lambda raw: raw.translate(_NO_CTL).strip()),
    ),
    token=TOKENS,
)
def test_submit_survives_arbitrary_bytes(
    server: LiveServer,
    watch: Watch,
    anon: httpx.Client,
    submit_url: str,
    body: bytes,
    content_type: bytes,
    token: str,
) -> None:
    upload = MultipartRequest(content_type, body)
    _post_upload(server, watch, anon, _with_token(server, submit_url, token), upload, returning=False)


@FUZZ
@given(upload=multipart_requests(), token=TOKENS)
def test_follow_ups_survive_hostile_multipart(
    server: LiveServer, watch: Watch, source_client: httpx.Client, upload: MultipartRequest, token: str
) -> None:
    url = _with_token(server, server.submit_url(source_client, "/home"), token)
    _post_upload(server, watch, source_client, url, upload, returning=True)


_HEADER_EXTRAS = st.sampled_from(
    [
        b"",
        b"X-Huge: " + b"h" * 10_000 + b"\r\n",
        b"X-Huger: " + b"h" * 70_000 + b"\r\n",
        b"".join(b"X-Many-%d: v\r\n" % i for i in range(1_000)),
        b"X-Nul: a\x00b\r\n",
        b"X-Bytes: \xff\xfe\xed\xa0\x80\r\n",
        b"X-Folded: a\r\n  continued\r\n",
        b"Bad Name: v\r\n",
        b"Cookie: buzon_csrf=" + b"c" * 5_000 + b"\r\n",
        b"Origin: null\r\n",
        b"Expect: 100-continue\r\n",
        b"Content-Encoding: gzip\r\n",
    ]
)


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out, start = bytearray(), 0
    while start < len(body):
        size = rng.randint(1, 70_000)
        out += b"%x\r\n" % len(body[start : start + size]) + body[start : start + size] + b"\r\n"
        start += size
    return bytes(out + b"0\r\n\r\n")


@FUZZ
@given(
    upload=multipart_requests(),
    framing=st.sampled_from(["exact", "exact", "chunked", "bad-chunk", "short", "long", "both", "two-lengths"]),
    extra=_HEADER_EXTRAS,
    seed=st.integers(0, 2**32 - 1),
)
def test_submit_survives_raw_http(
    server: LiveServer,
    watch: Watch,
    anon: httpx.Client,
    submit_url: str,
    upload: MultipartRequest,
    framing: str,
    extra: bytes,
    seed: int,
) -> None:
    """Headers and framing that no HTTP library would send: huge, many, NUL, lying lengths, bad chunks."""
    rng = random.Random(seed)
    body, size = upload.body, len(upload.body)
    framing_headers = {
        "exact": b"Content-Length: %d\r\n" % size,
        "chunked": b"Transfer-Encoding: chunked\r\n",
        "bad-chunk": b"Transfer-Encoding: chunked\r\n",
        "short": b"Content-Length: %d\r\n" % (size + rng.randint(1, 100_000)),
        "long": b"Content-Length: %d\r\n" % rng.randint(0, size),
        "both": b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % size,
        "two-lengths": b"Content-Length: %d\r\nContent-Length: %d\r\n" % (size, size + 1),
    }[framing]
    if framing in ("chunked", "both"):
        body = _chunked(body, rng)
    elif framing == "bad-chunk":
        body = b"zz\r\n" + body[:100] + b"\r\n"
    target = submit_url.removeprefix(server.source_url)
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {server.source_url.removeprefix('http://')}\r\n"
        f"Cookie: buzon_csrf={anon.cookies['buzon_csrf']}\r\nConnection: close\r\n"
    ).encode()
    head += b"Content-Type: " + upload.content_type + b"\r\n" + framing_headers + extra + b"\r\n"
    complete = framing in ("exact", "chunked", "long")
    before = watch.snapshot()
    response = raw_exchange(server.source_url, head + body, complete=complete)
    status = parse_status(response)
    if complete:
        assert status is not None, response[:500]
    if status is not None:
        watch.check_page(status, response.partition(b"\r\n\r\n")[2])
    watch.settle(before, new_source=True)
    watch.check_log()


_CODENAMES = st.one_of(
    st.text(max_size=300),
    st.sampled_from([w.decode("utf-8", errors="replace") for w in HOSTILE_NAMES]),
    st.lists(st.sampled_from(["abacus", "zoom", "ñandú", "\u202e", "\x00", " " * 50]), max_size=12).map(" ".join),
)


@st.composite
def _small_forms(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[str]]) -> tuple[bytes, bytes]:
    """(Content-Type, body) of a small form: url-encoded as a browser would, or not at all."""
    shape = draw(st.sampled_from(["form", "form", "form", "raw", "huge", "multipart", "bad-utf8"]))
    data = {name: draw(values) for name, values in fields.items() if draw(st.booleans())}
    data.update(draw(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3)))
    encoded = urlencode(data).encode()
    urlencoded = b"application/x-www-form-urlencoded"
    if shape == "raw":
        return urlencoded, draw(st.binary(max_size=2000))
    if shape == "huge":
        return urlencoded, encoded + b"&pad=" + b"p" * 17_000
    if shape == "multipart":
        return (
            b"multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
        )
    if shape == "bad-utf8":
        return urlencoded + b"; charset=latin-1", encoded + b"&x=\xff\xfe%FF%00"
    return urlencoded, encoded


def _csrf_field(token: str, valid: str) -> str:
    return {"valid": valid, "missing": "", "garbage": "\x00\u202e" + "A" * 100, "foreign": "A" * 27 + "="}[token]


@FUZZ
@given(
    form=_small_forms({"codename": _CODENAMES}),
    token=TOKENS,
    real=st.sampled_from(["", "as-is", "shouted", "spaced"]),
)
def test_codename_login_survives_fuzzed_forms(
    server: LiveServer, watch: Watch, login_codename: str, form: tuple[bytes, bytes], token: str, real: str
) -> None:
    codename = login_codename
    content_type, body = form
    with httpx.Client(timeout=60) as client:
        valid = csrf_token_in(client.get(f"{server.source_url}/login").text)
        if real:
            known = {"as-is": codename, "shouted": codename.upper(), "spaced": f"  {codename}  ".replace(" ", "\t ")}
            body = urlencode({"codename": known[real], "csrf_token": _csrf_field(token, valid)}).encode()
        elif b"csrf_token" not in body and content_type.startswith(b"application/x-www"):
            body += b"&csrf_token=" + quote(_csrf_field(token, valid)).encode()
        before = watch.snapshot()
        response = client.post(f"{server.source_url}/login", content=body, headers={b"Content-Type": content_type})
        watch.check_page(response.status_code, response.content)
        assert watch.snapshot() == before
        watch.check_log()


@FUZZ
@given(
    which=st.one_of(
        st.just("real"), st.text(max_size=80), st.sampled_from(["..", "%2e%2e", "a/b", "\x00", "x" * 5000])
    ),
    form=_small_forms({}),
    token=TOKENS,
    logged_in=st.booleans(),
)
def test_reply_deletion_survives_fuzzed_requests(
    server: LiveServer,
    watch: Watch,
    anon: httpx.Client,
    source_client: httpx.Client,
    reply_id: str,
    which: str,
    form: tuple[bytes, bytes],
    token: str,
    logged_in: bool,
) -> None:
    client = source_client if logged_in else anon
    valid = csrf_token_in(client.get(f"{server.source_url}/login").text)
    content_type, body = form
    if content_type.startswith(b"application/x-www"):
        body += b"&csrf_token=" + quote(_csrf_field(token, valid)).encode()
    # Dots quoted too, or the client would resolve ".." itself and post elsewhere.
    path = f"/replies/{quote(reply_id if which == 'real' else which, safe='').replace('.', '%2E')}/delete"
    before = watch.snapshot()
    response = client.post(f"{server.source_url}{path}", content=body, headers={b"Content-Type": content_type})
    watch.check_page(response.status_code, response.content)
    assert watch.snapshot() == before
    watch.check_log()
    # The session survives whatever was thrown at it.
    assert source_client.get(f"{server.source_url}/home").status_code == 200


def test_the_fuzzed_server_still_takes_a_tip(server: LiveServer, watch: Watch) -> None:
    with httpx.Client(timeout=60) as client:
        before = watch.snapshot()
        response = submit_tip(server, client, "still working after the fuzz")
        assert response.status_code == 200
        codename_in(response.text)
    watch.check_store(before, new_source=True)
    watch.check_log()
