"""The app's own log lines never hold a caller's number or display name (issue 16): the call
flows (Stasis and FastAGI: consent given, refused, documentation, an unknown route) and the
withdrawal route's request are run with every log line captured at debug level, and the
rendered lines are searched byte by byte for the caller's distinctive number and name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from callconsent import names
from callconsent.app import ConfigPlanner
from callconsent.evidence.ledger import iter_entries
from callconsent.store import EvidenceStore
from callconsent.withdrawal.route import seal
from callconsent.withdrawal.route_adapter import WithdrawRequestHandler, lifecycle_runner
from tests.support.agi_fakes import FakeLine, request
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import (
    Harness,
    ShortTimeouts,
    load_demo,
    pcm_wav,
    write_audio,
    write_prompts,
)

NUMBER = "+4529384756"
NAME = "Zoltan Quixbyname"
SEAL = "Sea1KeyForTests0"


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured
    structlog.reset_defaults()


def rendered(logs: list[dict[str, Any]]) -> bytes:
    """Every captured line as the JSON renderer writes it, plus repr() of every value."""
    out = [json.dumps(e, default=repr, ensure_ascii=False) for e in logs]
    out += [repr(v) for e in logs for v in e.values()]
    return "\n".join(out).encode("utf-8", "surrogateescape")


def assert_no_caller(logs: list[dict[str, Any]]) -> None:
    assert logs, "the flows logged nothing: the check would prove nothing"
    data = rendered(logs)
    for needle in (NUMBER, NUMBER.lstrip("+"), NUMBER[-8:], NAME, NAME.split()[1]):
        assert needle.encode() not in data, f"{needle!r} in the app's log"


async def test_stasis_flows_log_no_caller_number_or_name(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    h = Harness(tmp_path)
    await h.start("1796455517.1", route="support", number=NUMBER, name=NAME)  # keeps the name
    await h.play_through("1796455517.1")
    await h.play_through("1796455517.1")
    await h.digit("1796455517.1", "1")  # given: recorded
    write_audio(Path(h.ari.result("1796455517.1")["CALLCONSENT_RECORDING"]), pcm_wav(800))
    await h.hangup("1796455517.1")
    await h.start("1796455517.2", route="support", number=NUMBER, name=NAME)
    await h.play_through("1796455517.2")
    await h.play_through("1796455517.2")
    await h.digit("1796455517.2", "2")  # refused
    await h.hangup("1796455517.2")
    await h.start("1796455517.3", route="nosuchroute", number=NUMBER, name=NAME)
    await h.start("1796455517.8", route="docs", number=NUMBER, name=NAME)
    await h.play_through("1796455517.8")  # documentation: recorded after the notice
    write_audio(Path(h.ari.result("1796455517.8")["CALLCONSENT_RECORDING"]), pcm_wav(800))
    await h.hangup("1796455517.8")
    calls = [e for e in h.ledger() if e["type"] == "call"]
    # the evidence has it (sealed): the log must not
    assert {caller_of(e, h.ledger_path).number for e in calls} == {NUMBER}
    assert {e["event"] for e in logs} >= {"call_entered", "consent_result", "recording_final"}
    assert_no_caller(logs)


async def test_fastagi_flows_log_no_caller_number_or_name(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    from callconsent.agi.adapter import AgiFlow

    write_prompts(tmp_path / "prompts")
    config = load_demo(tmp_path)
    config.storage.recordings_dir.mkdir(parents=True, exist_ok=True)
    config.storage.ledger_path.parent.mkdir(parents=True, exist_ok=True)
    store = EvidenceStore(
        recordings_dir=config.storage.recordings_dir,
        ledger_path=config.storage.ledger_path,
        config_sha256=config.sha256,
    )
    flow = AgiFlow(ShortTimeouts(ConfigPlanner(config, rng=lambda: 0.0), 1.0), store)
    caller = (NUMBER, NAME, "4570")
    for route, script, uid in (
        ("support", ["", "2"], "1796455517.4"),
        ("support", ["", "1"], "1796455517.5"),
        ("docs", [""], "1796455517.6"),
        ("nosuchroute", [], "1796455517.7"),
    ):
        line = FakeLine(
            request=request(f"callconsent?route={route}", uniqueid=uid),
            script=script,
            caller=caller,
        )
        await flow(line)
    await store.aclose()
    ledger = [e.entry for e in iter_entries(config.storage.ledger_path) if e.entry]
    calls = [e for e in ledger if e["type"] == "call"]
    assert {caller_of(e, config.storage.ledger_path).number for e in calls} == {NUMBER}
    assert_no_caller(logs)


class _Ami:
    async def db_del(self, family: str, key: str) -> None: ...
    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]:
        return [
            (
                "/callconsent/withdrawreq/1796455519.1-0",
                f"2026-01-15T10:00:00.000Z number {seal(SEAL, NUMBER)}",
            )
        ]

    async def setvar(self, channel: str, variable: str, value: str) -> None: ...
    async def set_global(self, variable: str, value: str) -> None: ...


async def test_the_withdrawal_route_logs_no_caller_number(
    tmp_path: Path, logs: list[dict[str, Any]]
) -> None:
    from tests.support.lifecycle_fixtures import make_store

    store = make_store(tmp_path)
    store.call("5000.2", NUMBER, purposes=("training",))
    handler = WithdrawRequestHandler(
        _Ami(), lifecycle_runner(store.root, store.ledger_path), key=lambda: SEAL
    )
    event = {
        "UserEvent": names.WITHDRAW_REQUEST_USER_EVENT,
        "Request": "1796455518.1-0",
        "Caller": "1796455518.1",
        "By": "number",
        "Value": seal(SEAL, NUMBER),
        "At": "2026-01-15T10:00:00.000Z",
    }
    await handler.on_request_event(event)
    await handler.recover()
    assert [e["result"] for e in logs if e["event"] == "withdraw_request_done"] == ["done", "done"]
    assert_no_caller(logs)
