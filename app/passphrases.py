"""Editor passphrase policy: long, and not guessable (zxcvbn)."""

from __future__ import annotations

from app.codenames import generate_codename

MIN_CHARS = 14
# zxcvbn scores 0-4; 3 is "safely unguessable: moderate protection from offline
# attack", the floor for a key-wrapping passphrase behind Argon2id.
MIN_SCORE = 3
# zxcvbn's cost grows with length; beyond this it adds nothing but CPU time.
_CHECKED_CHARS = 100


def weakness(passphrase: str, *, username: str = "") -> str | None:
    """Why ``passphrase`` is too weak, or None if it is acceptable."""
    if len(passphrase) < MIN_CHARS:
        return f"Use at least {MIN_CHARS} characters."
    if username and username.lower() in passphrase.lower():
        return "Do not include your username."
    # Imported on first use: its dictionaries take some 12 MB that the server
    # needs only while an editor chooses a passphrase.
    from zxcvbn import zxcvbn

    result = zxcvbn(passphrase[:_CHECKED_CHARS], user_inputs=[username, "buzon", "buzón"])
    if result["score"] < MIN_SCORE:
        warning = result["feedback"].get("warning") or "It would be easy to guess."
        return f"Too easy to guess: {warning} Try the suggested passphrase."
    return None


def suggest() -> str:
    """Seven random words from the EFF list: about 90 bits."""
    return generate_codename("en")
