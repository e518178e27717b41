"""The KDF gate: a bounded wait, then the busy page; Argon2id on low-priority threads of its own."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from app import crypto
from app.errors import ServiceBusy
from app.main import create_source_app
from app.web.admission import KDF_NICENESS, KdfGate
from tests.support import ServerFactory, SettingsFactory, codename_in, initialise, submit_tip

T = TypeVar("T")

FAST = crypto.KdfParams(time_cost=1, memory_kib=8)
PEPPER = bytes(32)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="nice values per thread are read from /proc")


def _thread_stat(tid: int, pid: int | str = "self") -> tuple[int, int]:
    """(nice value, CPU clock ticks) of one thread, from /proc/<pid>/task/<tid>/stat."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc(5)
    return int(fields[16]), int(fields[11]) + int(fields[12])


def _own_nice() -> int:
    return _thread_stat(threading.get_native_id())[0]


def _serve(slots: int, scenario: Callable[[KdfGate], Coroutine[None, None, T]]) -> T:
    async def run() -> T:
        gate = KdfGate(slots)
        async with gate.running():
            return await scenario(gate)

    return asyncio.run(run())


class _Holder:
    """Work that takes a slot until released, and says when it has started."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(10)
        return "held"

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, 10)


@linux_only
def test_argon2id_runs_at_the_lowest_priority_and_nothing_else_does(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _own_nice()
    argon2_nices: list[int] = []
    real = crypto._argon2id_here

    def recording(secret: bytes, salt: bytes, params: crypto.KdfParams) -> bytes:
        argon2_nices.append(_own_nice())
        return real(secret, salt, params)

    monkeypatch.setattr(crypto, "_argon2id_here", recording)

    def work() -> int:
        crypto.derive_source_keys("abacus " * 7, PEPPER, FAST)
        return _own_nice()  # the rest of the work, say the database, keeps its priority

    async def scenario(gate: KdfGate) -> tuple[set[int], int]:
        work_nices = await asyncio.gather(*(gate.run(work, wait_seconds=5) for _ in range(6)))
        return set(work_nices), _own_nice()

    work_nices, loop_nice = _serve(2, scenario)
    assert argon2_nices == [KDF_NICENESS] * 6
    assert work_nices == {before}
    assert loop_nice == before == _own_nice()
    # Asked to, or outside a gate, Argon2id runs where it is called.
    _serve(1, lambda gate: gate.run(work, wait_seconds=5, low_priority=False))
    crypto.derive_source_keys("abacus " * 7, PEPPER, FAST)
    assert argon2_nices[6:] == [before, before]


def test_the_same_keys_come_out_on_the_kdf_threads() -> None:
    async def scenario(gate: KdfGate) -> crypto.SourceKeys:
        return await gate.run(lambda: crypto.derive_source_keys("abacus " * 7, PEPPER, FAST), wait_seconds=1)

    there = _serve(1, scenario)
    here = crypto.derive_source_keys("abacus " * 7, PEPPER, FAST)
    assert (there.lookup_id, there.reply.secret) == (here.lookup_id, here.reply.secret)


def test_gate_refuses_when_every_slot_is_taken_and_admits_again_once_free() -> None:
    holder = _Holder()

    async def scenario(gate: KdfGate) -> str:
        held = asyncio.create_task(gate.run(holder, wait_seconds=1))
        await holder.wait_started()
        with pytest.raises(ServiceBusy):
            await gate.run(lambda: "refused", wait_seconds=0)
        with pytest.raises(ServiceBusy):
            await gate.run(lambda: "refused", wait_seconds=0.1)
        holder.release.set()
        assert await held == "held"
        return await gate.run(lambda: "admitted", wait_seconds=0)

    assert _serve(1, scenario) == "admitted"


def test_a_waiter_gets_the_slot_when_it_frees_within_the_wait() -> None:
    holder = _Holder()

    async def scenario(gate: KdfGate) -> str:
        held = asyncio.create_task(gate.run(holder, wait_seconds=1))
        await holder.wait_started()
        waiter = asyncio.create_task(gate.run(lambda: "waited", wait_seconds=10))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        holder.release.set()
        await held
        return await waiter

    assert _serve(1, scenario) == "waited"


def test_an_abandoned_derivation_keeps_its_slot_until_it_ends() -> None:
    holder = _Holder()

    async def scenario(gate: KdfGate) -> str:
        held = asyncio.create_task(gate.run(holder, wait_seconds=1))
        await holder.wait_started()
        held.cancel()  # the client went away; the thread still runs Argon2id
        await asyncio.sleep(0.1)
        with pytest.raises(ServiceBusy):
            await gate.run(lambda: "refused", wait_seconds=0.1)
        holder.release.set()
        with pytest.raises(asyncio.CancelledError):
            await held
        return await gate.run(lambda: "admitted", wait_seconds=10)

    assert _serve(1, scenario) == "admitted"


def test_a_cancelled_caller_resumes_only_once_its_work_has_ended() -> None:
    # The new-source path aborts its upload on cancellation: it must not do so
    # while the work is still recording that upload's bodies.
    holder = _Holder()

    async def scenario(gate: KdfGate) -> str:
        held = asyncio.create_task(gate.run(holder, wait_seconds=1, low_priority=False))
        await holder.wait_started()
        held.cancel()
        await asyncio.sleep(0.2)
        assert not held.done()
        holder.release.set()
        with pytest.raises(asyncio.CancelledError):
            await held
        return "resumed after"

    assert _serve(1, scenario) == "resumed after"


def test_errors_and_the_context_reach_the_caller_and_the_kdf_thread() -> None:
    locale = contextvars.ContextVar("locale", default="en")

    def fail() -> None:
        raise LookupError(locale.get())

    async def scenario(gate: KdfGate) -> str:
        locale.set("pt_BR")
        with pytest.raises(LookupError, match="pt_BR"):
            await gate.run(fail, wait_seconds=1)
        return await gate.run(locale.get, wait_seconds=1)

    assert _serve(1, scenario) == "pt_BR"


def test_gate_works_only_while_its_app_serves_and_leaves_no_thread_behind() -> None:
    gate = KdfGate(2)
    with pytest.raises(RuntimeError):
        asyncio.run(gate.run(lambda: None, wait_seconds=0))

    async def scenario(gate: KdfGate) -> None:
        await asyncio.gather(*(gate.run(lambda: None, wait_seconds=5) for _ in range(4)))
        assert any(t.name.startswith("buzon-kdf") for t in threading.enumerate())

    _serve(2, scenario)
    assert not any(t.name.startswith("buzon-kdf") for t in threading.enumerate())


@linux_only
def test_a_gate_that_cannot_lower_its_priority_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(which: int, who: int, priority: int) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "setpriority", refuse)

    async def scenario(gate: KdfGate) -> None:
        raise AssertionError("the gate started")

    with pytest.raises(Exception, match="initializer failed"):
        _serve(1, scenario)


def _server_threads(pid: int) -> dict[int, tuple[int, int]]:
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[int(task.name)] = _thread_stat(int(task.name), pid)
        except FileNotFoundError:  # a worker thread that just ended
            continue
    return threads


@linux_only
def test_concurrent_logins_on_a_real_server_all_succeed_on_low_priority_threads(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    # The production codename cost, so the derivations dominate the server's CPU time.
    settings = make_settings(
        tmp_path / "d",
        codename_kdf_memory_kib=65536,
        codename_kdf_time_cost=3,
        max_concurrent_kdf=2,
        kdf_wait_seconds=60,
    )
    server = server_factory(initialise(settings))
    with httpx.Client(timeout=60) as client:
        codename = codename_in(submit_tip(server, client, "a first tip").text)
    pid = server.process.pid
    before = _server_threads(pid)
    statuses: list[int] = []

    def log_in() -> None:
        with httpx.Client(timeout=120) as c:
            statuses.append(
                server.post_form(c, server.source_url, "/login", "/login", {"codename": codename}).status_code
            )

    logins = [threading.Thread(target=log_in) for _ in range(6)]
    for thread in logins:
        thread.start()
    for thread in logins:
        thread.join()
    after = _server_threads(pid)

    assert statuses == [303] * 6
    spent = {tid: ticks - before.get(tid, (0, 0))[1] for tid, (_, ticks) in after.items()}
    niced = {tid for tid, (nice, _) in after.items() if nice == KDF_NICENESS}
    # One gate per app (source and editor), at most max_concurrent_kdf threads each.
    assert 1 <= len(niced) <= 4
    assert after[pid][0] == os.getpriority(os.PRIO_PROCESS, 0)
    assert sum(spent[tid] for tid in niced) > 3 * sum(spent[tid] for tid in after if tid not in niced)


def test_an_app_with_four_kdf_slots_runs_four_derivations_at_once(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    # BUZON_MAX_CONCURRENT_KDF is the only limit: crypto.py has none of its own that would cap it lower.
    settings = make_settings(tmp_path / "d", max_concurrent_kdf=4)
    gate = create_source_app(initialise(settings).settings).state.kdf_gate
    inside = threading.Barrier(4, timeout=20)

    def meet_then_derive(derive: Callable[[], bytes]) -> bytes:
        inside.wait()  # every derivation waits here until four are under way together
        return derive()

    def work() -> bytes:
        with crypto.kdf_runner(meet_then_derive):
            return crypto.derive_source_keys("cuatro palabras a la vez", PEPPER, FAST).lookup_id

    async def four(gate: KdfGate) -> list[bytes]:
        return list(await asyncio.gather(*(gate.run(work, wait_seconds=5) for _ in range(4))))

    assert len(set(_serve_gate(gate, four))) == 1


def _serve_gate(gate: KdfGate, scenario: Callable[[KdfGate], Coroutine[None, None, T]]) -> T:
    async def run() -> T:
        async with gate.running():
            return await scenario(gate)

    return asyncio.run(run())
