"""The withdrawal route's adapter (R17a, b): a request from the route over a fake AMI, carried
out by the real after-call withdrawal on real evidence (sidecars, ledger, index, audit)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from callconsent import names
from callconsent.evidence import callref
from callconsent.evidence.ledger import iter_entries, verify_chain
from callconsent.lifecycle import audit
from callconsent.lifecycle.hold import set_hold
from callconsent.lifecycle.withdraw import Scope, WithdrawReport
from callconsent.withdrawal.route import seal
from callconsent.withdrawal.route_adapter import (
    SOURCE_RECOVERED,
    WithdrawRequestHandler,
    lifecycle_runner,
    seal_key,
)
from tests.support.ami_fakes import RouteAmi
from tests.support.lifecycle_fixtures import NUMBER, T0, Store, make_store

NOW = T0 + timedelta(days=10)
CHANNEL = "1767960000.42"
#: Two uniqueids whose call references collide (as in test_lifecycle_withdraw).
COLLIDING = ("1767607200.13922", "1767607200.15250")
SEAL = "Sea1KeyForTests0"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = make_store(tmp_path)
    store.call("5000.1", when=T0)  # documentation only
    store.call("5000.2", when=T0 + timedelta(days=1), purposes=("training",))
    store.call("5000.3", when=T0 + timedelta(days=2), purposes=("training",))
    store.call("5000.4", "+4587654321", when=T0 + timedelta(days=3), purposes=("training",))
    return store


def handler(store: Store, ami: RouteAmi) -> WithdrawRequestHandler:
    return WithdrawRequestHandler(
        ami, lifecycle_runner(store.root, store.ledger_path), key=lambda: SEAL, clock=lambda: NOW
    )


def event(by: str = "number", value: str = NUMBER, try_: int = 0, **extra: str) -> dict[str, str]:
    return {
        "Event": "UserEvent",
        "UserEvent": names.WITHDRAW_REQUEST_USER_EVENT,
        "Channel": "PJSIP/lab-caller-0000000d",
        "Uniqueid": CHANNEL,  # Asterisk's own
        "Request": f"{CHANNEL}-{try_}",
        "Caller": CHANNEL,
        "By": by,
        "Value": seal(SEAL, value),  # as the route's AES_ENCRYPT gives it
        "At": "2026-01-15T10:00:00.000Z",
        **extra,
    }


def marker(try_: int = 0) -> tuple[str, str, str]:
    return ("DBDel", names.ASTDB_FAMILY, f"{names.ASTDB_WITHDRAW_REQUEST_PREFIX}{CHANNEL}-{try_}")


def answered(value: str) -> tuple[str, str, str, str]:
    return ("Setvar", CHANNEL, names.VAR_WITHDRAW_RESULT, value)


def entries(store: Store, kind: str) -> list[dict[str, object]]:
    return [e.entry for e in iter_entries(store.ledger_path) if e.entry and e.entry["type"] == kind]


def state(store: Store, uniqueid: str, day: int) -> str:
    path = store.root / f"{T0 + timedelta(days=day):%Y/%m/%d}/{uniqueid}.json"
    return str(json.loads(path.read_text())["state"])


async def test_caller_on_the_route_withdraws_both_training_recordings_by_number(
    store: Store,
) -> None:
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event())

    assert (state(store, "5000.2", 1), state(store, "5000.3", 2)) == ("tombstone", "tombstone")
    assert state(store, "5000.1", 0) == "final"  # documentation untouched
    assert state(store, "5000.4", 3) == "final"  # another caller's training recording
    withdrawn = entries(store, "withdrawn")
    assert [(e["call"], e["outcome"], e["via"], e["source"]) for e in withdrawn] == [
        ({"uniqueid": "5000.2"}, "deleted", "number", "withdraw"),
        ({"uniqueid": "5000.3"}, "deleted", "number", "withdraw"),
    ]
    assert [e["reason"] for e in entries(store, "deleted")] == ["withdrawn", "withdrawn"]
    assert ami.calls == [marker(), answered("done")]  # marker gone before the caller hears it
    [line] = audit.read(store.ledger_path.parent / "audit.jsonl")
    assert (line["action"], line["actor"], line["deleted"]) == (
        "withdraw",
        "ivr",
        ["5000.2", "5000.3"],
    )
    assert f"request {CHANNEL}-0" in line["reason"]
    assert NUMBER not in json.dumps(line) and NUMBER not in json.dumps(withdrawn)
    assert verify_chain(store.ledger_path, check_schema=True) == []


async def test_the_app_log_reports_ids_and_counts_never_the_number(store: Store) -> None:
    with structlog.testing.capture_logs() as logs:
        await handler(store, RouteAmi()).on_request_event(event())
    [done] = [e for e in logs if e["event"] == "withdraw_request_done"]
    assert (done["result"], done["calls"], done["deleted"], done["deleted_ids"]) == (
        "done",
        3,
        2,
        ["5000.2", "5000.3"],
    )
    assert (done["request_id"], done["by"], done["kept_for_documentation"]) == (
        f"{CHANNEL}-0",
        "number",
        0,
    )
    assert NUMBER not in json.dumps(logs, default=str)
    assert NUMBER.lstrip("+") not in json.dumps(logs, default=str)


async def test_withheld_caller_withdraws_by_call_reference(store: Store) -> None:
    store.call("5000.7", None, when=T0 + timedelta(days=5), purposes=("training",))
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event("call_ref", callref.call_ref("5000.7"), 1))
    assert state(store, "5000.7", 5) == "tombstone"
    assert [e["via"] for e in entries(store, "withdrawn")] == ["call_ref"]
    assert ami.calls == [marker(1), answered("done")]


async def test_mistyped_call_reference_is_refused_and_nothing_is_touched(store: Store) -> None:
    ref = callref.call_ref("5000.2")
    typo = ref[:3] + str((int(ref[3]) + 1) % 10) + ref[4:]
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event("call_ref", typo, 1))
    assert ami.calls == [marker(1), answered("bad_ref")]
    assert entries(store, "withdrawn") == [] and state(store, "5000.2", 1) == "final"
    assert not (store.ledger_path.parent / "audit.jsonl").exists()


async def test_call_reference_of_no_call_answers_unknown_ref(store: Store) -> None:
    known = {callref.call_ref(u) for u in ("5000.1", "5000.2", "5000.3", "5000.4")}
    unknown = next(r for r in (callref.call_ref(f"x.{i}") for i in range(10)) if r not in known)
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event("call_ref", unknown, 2))
    assert ami.calls == [marker(2), answered("unknown_ref")]
    assert entries(store, "withdrawn") == []


async def test_call_reference_of_two_calls_answers_ambiguous_and_withdraws_nothing(
    store: Store,
) -> None:
    for uid in COLLIDING:
        store.call(uid, None, when=T0 + timedelta(days=6), purposes=("training",))
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event("call_ref", callref.call_ref(COLLIDING[0])))
    assert ami.calls == [marker(), answered("ambiguous")]
    assert entries(store, "withdrawn") == []
    [line] = audit.read(store.ledger_path.parent / "audit.jsonl")
    assert set(line["ambiguous"]) == set(COLLIDING)  # the operator sees which calls


async def test_recording_on_legal_hold_answers_pending(store: Store) -> None:
    with store.context(NOW) as ctx:
        set_hold(ctx, "5000.2", reason="dispute", case_ref="C-1", review_date=date(2026, 6, 1))
    ami = RouteAmi()
    await handler(store, ami).on_request_event(event())
    assert ami.calls == [marker(), answered("pending")]  # "registered", never "deleted"
    assert (state(store, "5000.2", 1), state(store, "5000.3", 2)) == ("final", "tombstone")


async def test_storage_failure_keeps_the_marker_for_the_next_login(store: Store) -> None:
    def broken(_scope: Scope, _reason: str, _now: datetime) -> WithdrawReport:
        raise OSError(28, "No space left on device")

    ami = RouteAmi()
    await WithdrawRequestHandler(ami, broken, key=lambda: SEAL).on_request_event(event())
    assert ami.calls == [answered("pending")]  # no DBDel: recovered at the next login


async def test_caller_gone_before_the_answer_still_finishes_the_withdrawal(store: Store) -> None:
    ami = RouteAmi(fail={"Setvar"})
    await handler(store, ami).on_request_event(event())
    assert state(store, "5000.2", 1) == "tombstone"
    assert ami.calls == [marker(), answered("done")]


async def test_requests_marked_while_the_app_was_away_are_carried_out_at_login(
    store: Store,
) -> None:
    store.call("5000.7", None, when=T0 + timedelta(days=5), purposes=("training",))
    prefix = f"/{names.ASTDB_FAMILY}/{names.ASTDB_WITHDRAW_REQUEST_PREFIX}"
    ami = RouteAmi(
        tree=[
            (f"{prefix}{CHANNEL}-0", f"2026-01-15T10:00:00.000Z number {seal(SEAL, NUMBER)}"),
            (
                f"{prefix}1767960001.9-1",
                f"2026-01-15T10:05:00.000Z call_ref {seal(SEAL, callref.call_ref('5000.7'))}",
            ),
        ]
    )
    with structlog.testing.capture_logs() as logs:
        done = await handler(store, ami).recover()
    assert done == 2
    assert [state(store, u, d) for u, d in (("5000.2", 1), ("5000.3", 2), ("5000.7", 5))] == [
        "tombstone"
    ] * 3
    assert ami.calls == [
        ("SetGlobal", names.VAR_SEAL_KEY, SEAL),  # before the markers: the route can seal
        ("DBGetTree", names.ASTDB_FAMILY, "withdrawreq"),
        marker(),
        ("DBDel", names.ASTDB_FAMILY, "withdrawreq/1767960001.9-1"),
    ]  # no channel to answer
    reasons = [line["reason"] for line in audit.read(store.ledger_path.parent / "audit.jsonl")]
    assert all(SOURCE_RECOVERED in r for r in reasons) and len(reasons) == 2
    assert [e["event"] for e in logs if e["event"].startswith("withdraw_requests_")] == [
        "withdraw_requests_recovered"
    ]


async def test_malformed_marker_is_deleted_and_never_carried_out(store: Store) -> None:
    key = f"/{names.ASTDB_FAMILY}/{names.ASTDB_WITHDRAW_REQUEST_PREFIX}{CHANNEL}-0"
    ami = RouteAmi(tree=[(key, "2026-01-15T10:00:00.000Z number 45 12")])
    assert await handler(store, ami).recover() == 0
    assert ami.calls[2:] == [marker()]
    assert entries(store, "withdrawn") == []


@pytest.mark.parametrize(
    "headers",
    [
        {"By": "number", "Value": "+45 12345678"},
        {"By": "number", "Value": "+4512345678\r\nAction: Originate"},
        {"By": "number", "Value": "anonymous"},
        {"By": "call_ref", "Value": "12345678"},
        {"By": "call_id", "Value": "5000.2"},  # the route never asks for a call id
        {"Request": "../../etc-0"},
        {"Request": "1767960000.42"},  # no attempt
        {"Caller": "PJSIP/x;1"},
    ],
    ids=[
        "spaces",
        "header-injection",
        "text",
        "short-ref",
        "call-id",
        "traversal",
        "no-try",
        "channel-name",
    ],
)
async def test_malformed_request_event_changes_nothing(
    store: Store, headers: dict[str, str]
) -> None:
    sealed = {k: seal(SEAL, v) if k == "Value" else v for k, v in headers.items()}
    ami = RouteAmi()
    await handler(store, ami).on_request_event({**event(), **sealed})
    assert ami.calls == []
    assert entries(store, "withdrawn") == []


@pytest.mark.parametrize(
    "value",
    [NUMBER, seal("AnotherKey000000", NUMBER), "not base64!", seal(SEAL, NUMBER)[:-4]],
    ids=["in-clear", "other-key", "garbage", "cut"],
)
async def test_a_value_not_sealed_with_the_apps_key_is_refused(store: Store, value: str) -> None:
    ami = RouteAmi()
    await handler(store, ami).on_request_event({**event(), "Value": value})
    assert ami.calls == [] and entries(store, "withdrawn") == []


async def test_without_its_seal_key_the_app_carries_out_no_request(
    store: Store, tmp_path: Path
) -> None:
    def no_key() -> str:
        raise OSError(13, "Permission denied")

    ami = RouteAmi()
    h = WithdrawRequestHandler(ami, lifecycle_runner(store.root, store.ledger_path), key=no_key)
    with structlog.testing.capture_logs() as logs:
        await h.on_request_event(event())
    assert ami.calls == [] and entries(store, "withdrawn") == []
    assert [e["event"] for e in logs] == [
        "withdraw_seal_key_unavailable",
        "withdraw_request_invalid",
    ]


def test_the_seal_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    first = seal_key(ledger)
    path = tmp_path / "withdraw-seal.key"
    assert oct(path.stat().st_mode & 0o777) == "0o600" and len(first) == 16
    assert seal_key(ledger) == first
    path.write_text("short\n")
    with pytest.raises(ValueError, match="not a seal key"):
        seal_key(ledger)
