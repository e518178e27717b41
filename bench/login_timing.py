"""Does a login for an unknown username cost the same as a wrong passphrase?

Runs the real ``Authenticator`` against a throw-away SQLite instance with the
production Argon2id parameters, and prints the median time of three kinds of
failed login, each as a ratio to a wrong passphrase for a real account timed
in the same run (the reference). Ratios near 1.0 mean the response time does
not tell an attacker which usernames exist.

    .venv/bin/python -m bench.login_timing [--rounds 15]

A benchmark, not a timed test: run it by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from app.db.migrate import upgrade_database
from app.db.session import make_engine, make_session_factory
from app.services import editors, keys
from app.settings import Settings


def _time_once(attempt: Callable[[], None]) -> float:
    start = time.perf_counter()
    with contextlib.suppress(editors.LoginFailed):
        attempt()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))  # production KDF costs
        engine = make_engine(settings.resolved_database_url)
        upgrade_database(engine)
        factory = make_session_factory(engine)
        with factory() as session:
            keys.initialise_instance(
                session=session, pepper_path=settings.pepper_path, codename_kdf=settings.codename_kdf
            )
            editors.add_editor(
                session=session,
                username="real",
                passphrase="the real editor passphrase",
                is_admin=False,
                kdf=settings.editor_kdf,
                newsroom_keys=None,
            )
        authenticator = editors.Authenticator(settings.editor_kdf)

        def login(username: str, passphrase: str) -> Callable[[], None]:
            def attempt() -> None:
                with factory() as session:
                    authenticator.login(session=session, username=username, passphrase=passphrase, otp="000000")

            return attempt

        cases = {
            "wrong passphrase (reference)": login("real", "a wrong passphrase"),
            "unknown username": login("nobody", "a wrong passphrase"),
            "right passphrase, wrong code": login("real", "the real editor passphrase"),
        }
        # Interleaved rounds, so drift in the machine's load touches every case alike.
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, attempt in cases.items():
                samples[name].append(_time_once(attempt))
        reference = statistics.median(samples["wrong passphrase (reference)"])
        print(
            f"Argon2id t={settings.editor_kdf_time_cost} m={settings.editor_kdf_memory_kib} KiB, {args.rounds} rounds"
        )
        for name, times in samples.items():
            median = statistics.median(times)
            print(f"{name:32} {median * 1000:8.1f} ms   {median / reference:.2f}")


if __name__ == "__main__":
    main()
