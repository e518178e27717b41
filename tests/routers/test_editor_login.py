"""Editor login: passphrase and single-use TOTP, keys in memory for the session only."""

from __future__ import annotations

import httpx

from tests.support import LiveServer, ServerFactory, csrf_token_in


def _login(server: LiveServer, client: httpx.Client, username: str, passphrase: str, otp: str) -> httpx.Response:
    data = {"username": username, "passphrase": passphrase, "otp": otp}
    return server.post_form(client, server.editor_url, "/login", "/login", data)


def test_wrong_passphrase_code_or_user_all_fail_alike(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor()
    attempts = [
        (account.username, account.passphrase + "x", account.otp()),
        (account.username, account.passphrase, "000000" if account.otp() != "000000" else "111111"),
        ("nobody-" + account.username, account.passphrase, account.otp()),
    ]
    for username, passphrase, otp in attempts:
        response = _login(live_server, client, username, passphrase, otp)
        assert response.status_code == 401
        assert "Login failed" in response.text
        assert "buzon_editor" not in response.headers.get("set-cookie", "")


def test_a_non_ascii_code_is_a_wrong_code_not_a_server_error(live_server: LiveServer, client: httpx.Client) -> None:
    # Found by tests/routers/test_fuzz_editor_forms.py: hmac.compare_digest raised TypeError on such codes (a 500).
    account = live_server.instance.add_editor()
    for otp in ("１２３４５６", "٣٣٣٣٣٣", "12345é", "\u202e123456"):
        response = _login(live_server, client, account.username, account.passphrase, otp)
        assert response.status_code == 401
        assert "Login failed" in response.text
    assert _login(live_server, client, account.username, account.passphrase, account.otp()).status_code == 303


def test_a_totp_code_cannot_be_used_twice(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor()
    otp = account.otp()
    assert _login(live_server, client, account.username, account.passphrase, otp).status_code == 303
    with httpx.Client() as other:
        assert _login(live_server, other, account.username, account.passphrase, otp).status_code == 401


def test_logout_ends_the_session(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor()
    live_server.login(client, account)
    cookie = client.cookies["buzon_editor"]
    assert client.get(f"{live_server.editor_url}/").status_code == 200
    assert live_server.post_form(client, live_server.editor_url, "/", "/logout", {}).status_code == 303
    # Replaying the old cookie after logout gets the login page, not the inbox.
    with httpx.Client(cookies={"buzon_editor": cookie}) as replay:
        assert replay.get(f"{live_server.editor_url}/").status_code == 303


def test_sessions_do_not_survive_a_restart(
    live_server: LiveServer, client: httpx.Client, server_factory: ServerFactory
) -> None:
    account = live_server.instance.add_editor()
    live_server.login(client, account)
    cookie = client.cookies["buzon_editor"]
    live_server.process.terminate()
    live_server.process.wait(timeout=10)
    restarted = server_factory(live_server.instance)
    with httpx.Client(cookies={"buzon_editor": cookie}) as replay:
        assert replay.get(f"{restarted.editor_url}/").status_code == 303


def test_editor_without_grant_sees_a_clear_notice(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor(grant=False)
    live_server.login(client, account)
    assert "no newsroom key yet" in client.get(f"{live_server.editor_url}/").text


def test_cross_site_login_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor()

    token = csrf_token_in(client.get(f"{live_server.editor_url}/login").text)
    data = {"username": account.username, "passphrase": account.passphrase, "otp": account.otp()}
    response = client.post(
        f"{live_server.editor_url}/login", data={**data, "csrf_token": token}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    assert "buzon_editor=" not in response.headers.get("set-cookie", "")


def test_login_without_csrf_token_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    account = live_server.instance.add_editor()
    client.get(f"{live_server.editor_url}/login")
    data = {"username": account.username, "passphrase": account.passphrase, "otp": account.otp()}
    response = client.post(f"{live_server.editor_url}/login", data=data)
    assert response.status_code == 403
    assert "expired" in response.text


def test_login_form_must_be_urlencoded_and_small(live_server: LiveServer, client: httpx.Client) -> None:
    big = client.post(f"{live_server.editor_url}/login", data={"username": "x" * 20_000})
    assert big.status_code == 400
    multipart = client.post(f"{live_server.editor_url}/login", files={"username": ("a", b"b")})
    assert multipart.status_code == 400
    # Nothing was spooled to the server's temporary directory.
    assert list(live_server.tmp_dir.iterdir()) == []
