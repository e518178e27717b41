"""Configuration: one frozen object, built explicitly and never at import time."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.crypto import KdfParams
from app.media.sandbox import SandboxLimits

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of a Buzón instance, read from ``BUZON_*`` variables or arguments."""

    model_config = SettingsConfigDict(env_prefix="BUZON_", frozen=True, extra="forbid")

    data_dir: Path = Path("buzon-data")
    # The source interface's v3 onion name; pages reached by any other name warn.
    onion_address: str | None = Field(default=None, pattern=r"^[a-z2-7]{56}\.onion$")
    # Secret: a PostgreSQL URL may carry a password, which must not show
    # wherever Settings is printed or logged.
    database_url: SecretStr | None = None
    max_submission_bytes: int = Field(default=500 * MIB, ge=1024)
    max_message_chars: int = Field(default=100_000, ge=1)
    max_files_per_submission: int = Field(default=20, ge=1)

    # Files up to this size are held in memory to strip hidden metadata; larger
    # ones are stored as sent (the form says so). The budget caps all buffers.
    max_strip_bytes: int = Field(default=32 * MIB, ge=0, le=64 * MIB)
    # Uploads stop short of filling the disk by this much, so the database,
    # editors' replies and the deletions that free space always have room.
    store_reserve_mib: int = Field(default=256, ge=0)
    # Empty slots made ahead for bodies, topped up daily (docs/storage.md): above a busy day's
    # messages, files and replies, or a batch made mid-day dates the bodies that use it.
    store_pool: int = Field(default=1024, ge=1)
    # With more than one admin, deleting a source or an editor waits for a second admin.
    second_admin_approval: bool = True
    strip_memory_budget_bytes: int = Field(default=320 * MIB, ge=0)
    # The parser sandbox (app/media/sandbox.py): each untrusted file is parsed in a
    # worker process of its own, with this much memory beyond the parsers' code,
    # this much CPU and wall-clock time, and at most this many workers at once.
    sandbox_memory_mib: int = Field(default=768, ge=64)
    sandbox_cpu_seconds: int = Field(default=20, ge=1)
    sandbox_wall_seconds: float = Field(default=30, gt=0)
    sandbox_workers: int = Field(default=2, ge=1)
    source_session_idle_minutes: int = Field(default=120, ge=1)
    # An upload with no byte for this long, or averaging under this rate after two
    # minutes, is ended (app/web/upload.py): a stalled one would hold a thread and memory.
    upload_idle_seconds: float = Field(default=60, gt=0)
    upload_min_bytes_per_second: int = Field(default=256, ge=0)
    # Uploads receiving at once; one more waits this long for a slot, then gets the
    # busy page. Each holds a thread and some memory while its body arrives, so this bounds both.
    max_concurrent_uploads: int = Field(default=64, ge=1, le=1024)
    upload_slot_wait_seconds: float = Field(default=10, ge=0)
    min_first_message_chars: int = Field(default=0, ge=0)
    # Global budgets per clock hour: they refuse floods without knowing who sends them.
    max_submissions_per_hour: int = Field(default=2000, ge=1)
    max_bytes_per_hour: int = Field(default=50 * 1024 * MIB, ge=1024)
    max_new_codenames_per_hour: int = Field(default=1000, ge=1)
    max_concurrent_kdf: int = Field(default=2, ge=1, le=64)
    kdf_wait_seconds: float = Field(default=2.0, ge=0)

    # Argon2id costs. Codename parameters are fixed per installation at init.
    editor_kdf_time_cost: int = Field(default=3, ge=1, le=16)
    editor_kdf_memory_kib: int = Field(default=128 * 1024, ge=8)
    codename_kdf_time_cost: int = Field(default=3, ge=1, le=16)
    codename_kdf_memory_kib: int = Field(default=64 * 1024, ge=8)
    # Tests set this to run Argon2id with toy costs; production refuses them.
    insecure_fast_kdf: bool = False

    # Long enough for a slow upload over Tor to finish before its form expires.
    csrf_lifetime_hours: int = Field(default=24, ge=1, le=24 * 7)

    editor_session_idle_minutes: int = Field(default=30, ge=1)
    editor_session_max_hours: int = Field(default=12, ge=1)
    # Editor logins: failures per account before a lockout, and attempts per
    # minute across all accounts (each attempt costs one Argon2id run).
    editor_login_max_failures: int = Field(default=5, ge=1)
    editor_login_lockout_minutes: int = Field(default=15, ge=1)
    editor_logins_per_minute: int = Field(default=30, ge=1)

    # The RFC 3161 time-stamping authority for the daily anchors (docs/evidence.md): off
    # without a URL. Its CA bundle (PEM) is what its replies are checked against. Reached
    # through Tor's SOCKS port unless tsa_via_tor is off.
    tsa_url: str | None = Field(default=None, pattern=r"^https?://")
    tsa_ca_file: Path | None = None
    tsa_via_tor: bool = True
    tor_socks_url: str = "socks5://127.0.0.1:9050"

    # Optional content-free "new activity" email (app/services/notifications.py); off unless a host is set.
    notify_smtp_host: str | None = None
    notify_smtp_port: int = Field(default=587, ge=1, le=65535)
    notify_smtp_starttls: bool = True
    notify_smtp_username: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_from: str = "buzon@localhost"
    notify_recipients: list[str] = Field(default_factory=list)
    notify_every_hours: int = Field(default=6, ge=1, le=168)

    @model_validator(mode="after")
    def _budget_holds_one_file(self) -> Settings:
        if self.strip_memory_budget_bytes < 2 * self.max_strip_bytes:
            raise ValueError("strip_memory_budget_bytes must be at least twice max_strip_bytes")
        return self

    @model_validator(mode="after")
    def _refuse_weak_kdf(self) -> Settings:
        weak = self.editor_kdf_memory_kib < 64 * 1024 or self.codename_kdf_memory_kib < 32 * 1024
        if weak and not self.insecure_fast_kdf:
            raise ValueError("Argon2id memory below 64 MiB (editor) / 32 MiB (codename) needs insecure_fast_kdf")
        return self

    @property
    def editor_kdf(self) -> KdfParams:
        return KdfParams(time_cost=self.editor_kdf_time_cost, memory_kib=self.editor_kdf_memory_kib)

    @property
    def codename_kdf(self) -> KdfParams:
        return KdfParams(time_cost=self.codename_kdf_time_cost, memory_kib=self.codename_kdf_memory_kib)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'buzon.db'}"

    @property
    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(
            memory_bytes=self.sandbox_memory_mib * MIB,
            cpu_seconds=self.sandbox_cpu_seconds,
            wall_seconds=self.sandbox_wall_seconds,
            workers=self.sandbox_workers,
        )

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def pepper_path(self) -> Path:
        return self.data_dir / "pepper"

    @property
    def csrf_key_path(self) -> Path:
        return self.data_dir / "csrf.key"

    # Retention
    # Sources with no submission for this many days are deleted automatically
    # (except "published" ones, see app/services/retention.py); None keeps all.
    retention_days: int | None = Field(default=None, ge=1)
    # The inbox warns this many days ahead of each automatic deletion.
    retention_warning_days: int = Field(default=7, ge=0)
