"""The withdrawal route's answer came after its 4 s wait (R17a, b): the caller heard
"registered, it will be done shortly" and the route raised ``CallconsentWithdrawRequestLate``.
The app, once the request's own handling has run to its end, makes that true where it can: the
rule (:func:`callconsent.withdrawal.route.when_not_told`) over every answer, and the adapter over
a fake AMI with the real after-call withdrawal on real evidence (sidecars, ledger, audit)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from callconsent.evidence import callref
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.lifecycle import audit
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.withdraw import Scope, WithdrawReport
from callconsent.withdrawal import route as rules
from callconsent.withdrawal.route import seal
from callconsent.withdrawal.route_adapter import (
    REMEMBER_FOR,
    Runner,
    WithdrawRequestHandler,
    lifecycle_runner,
)
from tests.support.ami_fakes import RouteAmi
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_store

NOW = T0 + timedelta(days=10)
CHANNEL = "1767960000.42"
#: Two uniqueids whose call references collide (as in test_lifecycle_withdraw).
COLLIDING = ("1767607200.13922", "1767607200.15250")
OTHER_NUMBER = "+4587654321"
SEAL = "Sea1KeyForTests0"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("5000.2", when=T0 + timedelta(days=1), purposes=("training",))
    # a reference of two calls: the caller's (training) and another caller's (both purposes)
    store.call(COLLIDING[0], NUMBER, when=T0 + timedelta(days=6), purposes=("training",))
    store.call(
        COLLIDING[1],
        OTHER_NUMBER,
        when=T0 + timedelta(days=6),
        purposes=("documentation", "training"),
    )
    return store


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def handler(
    store: Store, ami: RouteAmi, run: Runner | None = None, clock: Clock | None = None
) -> WithdrawRequestHandler:
    return WithdrawRequestHandler(
        ami,
        run or lifecycle_runner(store.root, store.ledger_path),
        key=lambda: SEAL,
        clock=clock or Clock(),
    )


def event(by: str = "call_ref", value: str = "", try_: int = 0) -> dict[str, str]:
    return {
        "Request": f"{CHANNEL}-{try_}",
        "Caller": CHANNEL,
        "By": by,
        "Value": seal(SEAL, value or callref.call_ref(COLLIDING[0])),
        "At": "2026-01-15T10:00:00.000Z",
    }


def late(try_: int = 0) -> dict[str, str]:
    return {"Request": f"{CHANNEL}-{try_}"}


def withdrawn(store: Store) -> list[tuple[str, str, str]]:
    """(call, outcome, via) of every ``withdrawn`` ledger entry."""
    return [
        (str(e.entry["call"]["uniqueid"]), str(e.entry["outcome"]), str(e.entry["via"]))
        for e in iter_entries(store.ledger_path)
        if e.entry and e.entry["type"] == "withdrawn"
    ]


def state(store: Store, uniqueid: str, day: int) -> str:
    path = store.root / f"{T0 + timedelta(days=day):%Y/%m/%d}/{uniqueid}.json"
    return str(json.loads(path.read_text())["state"])


def told(logs: list[dict[str, Any]]) -> dict[str, Any]:
    [line] = [e for e in logs if e["event"] == "withdraw_request_not_told"]
    return line


def unknown_ref() -> str:
    known = {callref.call_ref(u) for u in ("5000.2", *COLLIDING)}
    return next(r for r in (callref.call_ref(f"x.{i}") for i in range(10)) if r not in known)


# -- the rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "action"),
    [
        ("done", "as_heard"),
        ("pending", "as_heard"),
        ("ambiguous", "withdraw_every_match"),
        ("unknown_ref", "cannot_be_done"),
        ("bad_ref", "cannot_be_done"),
        (None, "not_handled"),
    ],
)
def test_what_the_app_does_for_each_answer_the_caller_did_not_hear(
    result: rules.Result | None, action: rules.NotTold
) -> None:
    assert rules.when_not_told(result) == action


# -- the adapter -------------------------------------------------------------------------------


async def test_late_ambiguous_reference_withdraws_every_call_it_matches(store: Store) -> None:
    ami = RouteAmi()
    h = handler(store, ami)
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event())
        assert withdrawn(store) == []  # in time the caller would have heard "ambiguous"
        await h.on_late(late())

    assert sorted(withdrawn(store)) == [
        (COLLIDING[0], "deleted", "call_id"),
        (COLLIDING[1], "documentation_kept", "call_id"),  # another caller's: training goes
    ]
    assert state(store, COLLIDING[0], 6) == "tombstone"
    assert state(store, "5000.2", 1) == "final"  # not matched by the reference
    line = told(logs)
    assert (line["log_level"], line["request_id"], line["result"], line["done"]) == (
        "warning",
        f"{CHANNEL}-0",
        "ambiguous",
        "withdraw_every_match",
    )
    assert sorted(line["call_ids"]) == sorted(COLLIDING) and line["complete"] is True
    assert (line["deleted_ids"], line["kept_ids"]) == ([COLLIDING[0]], [COLLIDING[1]])
    lines = audit.read(store.ledger_path.parent / "audit.jsonl")
    own, *done = lines
    assert sorted(own["ambiguous"]) == sorted(COLLIDING) and own["deleted"] == []
    assert sorted(a["scope"]["call_id"] for a in done) == sorted(COLLIDING)
    assert all(a["actor"] == "ivr" and a["action"] == "withdraw" for a in done)
    assert all(f"request {CHANNEL}-0" in a["reason"] and "(route," in a["reason"] for a in done)
    assert verify_chain(store.ledger_path, check_schema=True) == []


async def test_late_event_waits_for_the_request_still_being_handled(store: Store) -> None:
    real = lifecycle_runner(store.root, store.ledger_path)
    started, release = threading.Event(), threading.Event()

    def blocked(scope: Scope, reason: str, now: datetime) -> WithdrawReport:
        if scope.call_ref is not None:  # the request's own run: held until released
            started.set()
            release.wait(10)
        return real(scope, reason, now)

    h = handler(store, RouteAmi(), blocked)
    request = asyncio.create_task(h.on_request_event(event()))
    await asyncio.sleep(0)  # both spawned in AMI order, as the AMI reader does
    late_task = asyncio.create_task(h.on_late(late()))
    assert await asyncio.to_thread(started.wait, 5)
    await asyncio.sleep(0.05)
    assert not late_task.done() and withdrawn(store) == []
    release.set()
    await asyncio.wait_for(asyncio.gather(request, late_task), 10)
    assert sorted(c for c, _, _ in withdrawn(store)) == sorted(COLLIDING)


async def test_late_done_changes_nothing_more(store: Store) -> None:
    ami = RouteAmi()
    h = handler(store, ami)
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event("number", NUMBER))
        before = withdrawn(store)
        await h.on_late(late())
    assert sorted(c for c, _, _ in before) == sorted(["5000.2", COLLIDING[0]])
    assert withdrawn(store) == before
    line = told(logs)
    assert (line["log_level"], line["result"], line["done"]) == ("info", "done", "as_heard")


async def test_late_pending_leaves_the_held_recording_as_it_is(store: Store) -> None:
    with store.context(NOW) as ctx:
        set_hold(ctx, "5000.2", reason="dispute", case_ref="C-1", review_date=date(2026, 6, 1))
    h = handler(store, RouteAmi())
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event("number", NUMBER))
        await h.on_late(late())
    assert state(store, "5000.2", 1) == "final"
    assert [c for c, _, _ in withdrawn(store)] == [COLLIDING[0]]  # the request's own, once
    line = told(logs)
    assert (line["log_level"], line["result"], line["done"]) == ("info", "pending", "as_heard")


@pytest.mark.parametrize("result", ["unknown_ref", "bad_ref"])
async def test_late_reference_of_no_call_is_an_error_for_the_operator(
    store: Store, result: str
) -> None:
    ref = unknown_ref()
    if result == "bad_ref":
        ref = ref[:3] + str((int(ref[3]) + 1) % 10) + ref[4:]
    h = handler(store, RouteAmi())
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event("call_ref", ref))
        await h.on_late(late())
    assert withdrawn(store) == []
    line = told(logs)
    assert (line["log_level"], line["request_id"], line["result"], line["done"]) == (
        "error",
        f"{CHANNEL}-0",
        result,
        "cannot_be_done",
    )
    assert ref not in json.dumps(line)


async def test_late_event_of_a_request_never_handled_changes_nothing(store: Store) -> None:
    h = handler(store, RouteAmi())
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event())  # attempt 0: ambiguous
        await h.on_late(late(1))  # another attempt, never seen
    assert withdrawn(store) == []
    line = told(logs)
    assert (line["log_level"], line["result"], line["done"]) == ("info", None, "not_handled")


async def test_a_request_is_remembered_for_its_late_event_only_for_a_while(store: Store) -> None:
    clock = Clock()
    h = handler(store, RouteAmi(), clock=clock)
    await h.on_request_event(event())
    clock.now += REMEMBER_FOR + timedelta(seconds=1)
    await h.on_request_event(event("number", OTHER_NUMBER, 1))  # prunes the first
    with structlog.testing.capture_logs() as logs:
        await h.on_late(late(0))
    assert told(logs)["done"] == "not_handled"
    assert [c for c, _, _ in withdrawn(store)] == [COLLIDING[1]]  # only the second request


async def test_a_late_event_is_applied_once(store: Store) -> None:
    h = handler(store, RouteAmi())
    await h.on_request_event(event())
    await h.on_late(late())
    after = withdrawn(store)
    with structlog.testing.capture_logs() as logs:
        await h.on_late(late())
    assert withdrawn(store) == after and told(logs)["done"] == "not_handled"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Request": ""},
        {"Request": "../../etc-0"},
        {"Request": f"{CHANNEL}"},  # no attempt
        {"Request": f"{CHANNEL}-0\r\nAction: Originate"},
        {"Request": f"{CHANNEL}-0;"},
    ],
    ids=["none", "empty", "traversal", "no-try", "header-injection", "punctuation"],
)
async def test_malformed_late_event_changes_nothing(store: Store, headers: dict[str, str]) -> None:
    h = handler(store, RouteAmi())
    await h.on_request_event(event())
    with structlog.testing.capture_logs() as logs:
        await h.on_late(headers)
    assert withdrawn(store) == []
    assert [e["event"] for e in logs] == ["withdraw_request_late_invalid"]


async def test_a_call_that_cannot_be_withdrawn_late_is_reported_and_the_others_done(
    store: Store,
) -> None:
    real = lifecycle_runner(store.root, store.ledger_path)

    def flaky(scope: Scope, reason: str, now: datetime) -> WithdrawReport:
        if scope.call_id == COLLIDING[1]:
            raise OSError(28, "No space left on device")
        return real(scope, reason, now)

    h = handler(store, RouteAmi(), flaky)
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event())
        await h.on_late(late())
    assert withdrawn(store) == [(COLLIDING[0], "deleted", "call_id")]
    [failed] = [e for e in logs if e["event"] == "withdraw_request_not_told_failed"]
    assert (failed["log_level"], failed["call_id"]) == ("error", COLLIDING[1])
    line = told(logs)
    assert (line["call_ids"], line["failed_ids"], line["complete"]) == (
        [COLLIDING[0]],
        [COLLIDING[1]],
        False,
    )
