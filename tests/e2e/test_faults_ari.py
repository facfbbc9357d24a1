"""ARI faults between the app and Asterisk (R36, issue 11), through a TCP proxy the test controls
(tests/harness/tcp_proxy.py): the app under test talks to ARI on 127.0.0.1:8089.

- The events websocket is cut mid-call (and refused for 1.5 s): the calls left in Stasis are
  continued unrecorded at the reconnect (``event_gap``, found with GET /ari/applications/{app}),
  calls that were recording keep recording and get a final sidecar from the app itself, and
  callers who hung up in the gap get their ledger entry.
- ARI is slow for one call (the proxy holds back the answer to the first call's play request,
  its notice and question, for 8 s): that request times out (5 s), the call goes on unrecorded,
  and the other calls placed with it go through their flow in their normal time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from callconsent.config import Config
from tests.e2e.faults import (
    Caller,
    Expect,
    Placed,
    app_events,
    check_case,
    reconcile,
    report,
    settle,
    wait_until,
)
from tests.e2e.lab_app import (
    LabApp,
    call_entries_for,
    lab_config_variant,
    route_timing,
    wait_sidecar,
)
from tests.harness.asterisk import AsteriskLab
from tests.harness.rtp_pcap import Step
from tests.harness.sipp import Call, Digit, Pause
from tests.harness.tcp_proxy import TcpProxy

PROXY_PORT = 8089
TRAINING = Expect(frozenset({"training"}))
PER_STATE = 3
TAIL = 10.0
STUCK_SECONDS = 8.0


def _timeline(total: float, digit_at: float | None = None, digit: str = "1") -> list[Step]:
    if digit_at is None:
        return [Pause(total)]
    return [Pause(digit_at), Digit(digit), Pause(max(1.0, total - digit_at - 0.16))]


@pytest.fixture(scope="module")
def proxied(
    asterisk: AsteriskLab, lab_app: LabApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LabApp, TcpProxy]]:
    """The app behind the proxy (the session's app is stopped meanwhile: one app per name)."""
    folder = tmp_path_factory.mktemp("proxied")
    config = lab_config_variant(
        folder / "callconsent.yaml", ari_url=f"http://127.0.0.1:{PROXY_PORT}"
    )
    lab_app.stop()
    try:
        with TcpProxy(PROXY_PORT, 8088) as proxy:
            app = LabApp(folder / "serve.log", config)
            app.start()
            try:
                yield app, proxy
            finally:
                app.stop()
    finally:
        lab_app.start()


@pytest.fixture(scope="module")
def dropped(
    asterisk: AsteriskLab, config: Config, proxied: tuple[LabApp, TcpProxy]
) -> dict[str, Any]:
    app, proxy = proxied
    t = route_timing(config, "support")
    question = t.notices_end + min(0.5, (t.question_end - t.notices_end) / 2)
    states = {  # seconds into the flow when the websocket drops; digit; what may be recorded
        "ws dropped in notice": (min(1.2, t.notices_end / 2), None, Expect()),
        "ws dropped in question": (question, None, Expect()),
        "ws dropped while recording": (t.question_end + 3.0, t.question_end + 0.5, TRAINING),
    }
    since = asterisk.log_offset()
    caller = Caller()
    lead = max(o for o, _d, _e in states.values()) + 1.0
    drop_at = time.monotonic() + lead
    for n, (case, (offset, digit_at, expect)) in enumerate(states.items()):
        for i in range(PER_STATE):
            call = Call(
                to="support",
                caller_number=f"+45984{n:02d}{i:04d}",
                timeline=_timeline(offset + TAIL, digit_at),
            )
            caller.place(case, call, expect, at=drop_at - offset)
    for i in range(2):  # these hang up while the websocket is down
        call = Call(to="support", caller_number=f"+4598490{i:04d}", timeline=[Pause(2.0 + 0.5)])
        gone = Expect(reaches=False)
        caller.place("caller hangs up in the gap", call, gone, at=drop_at - 2.0)
    time.sleep(max(0.0, drop_at - time.monotonic()))
    mark = app.log_path.stat().st_size
    dropped = proxy.drop_websockets(refuse_for=1.5)
    wait_until(
        lambda: any(e.get("event") == "ari_connected" for e in app_events(app.log_path, mark)),
        timeout=10,
        what="the app to reconnect",
    )
    placed = caller.wait(timeout=120)
    caller.close()
    settle(asterisk, placed, since)
    finals = {}
    for p in placed:  # the app itself finalises what was recording (no reconcile yet)
        if p.case == "ws dropped while recording" and p.dest is not None and p.dest.recording:
            finals[p.dest.uniqueid] = wait_sidecar(config, p.dest.recording)["state"]
    proc = reconcile(config)
    cases = {c: check_case(config, c, placed) for c in dict.fromkeys(p.case for p in placed)}
    for result in cases.values():
        report(result)
    return {"placed": placed, "cases": cases, "finals": finals, "dropped": dropped, "proc": proc}


def test_the_proxy_cut_the_apps_websocket(dropped: dict[str, Any]) -> None:
    assert dropped["dropped"] == 1


@pytest.mark.parametrize(
    "case", ["ws dropped in notice", "ws dropped in question", "ws dropped while recording"]
)
def test_every_call_reaches_its_destination_and_nothing_is_recorded_without_a_basis(
    dropped: dict[str, Any], case: str
) -> None:
    result = dropped["cases"][case]
    assert result.placed == PER_STATE and result.reached == PER_STATE, result.row()
    assert not result.violations, result.violations


def test_calls_left_in_stasis_are_continued_unrecorded_at_the_reconnect(
    dropped: dict[str, Any],
) -> None:
    placed: list[Placed] = dropped["placed"]
    for p in placed:
        if p.case in ("ws dropped in notice", "ws dropped in question"):
            assert p.dest is not None
            assert (p.dest.status, p.dest.reason, p.dest.recording) == ("error", "event_gap", "")


def test_calls_recording_through_the_gap_get_a_final_sidecar_from_the_app(
    dropped: dict[str, Any],
) -> None:
    result = dropped["cases"]["ws dropped while recording"]
    assert result.recorded == PER_STATE
    assert list(dropped["finals"].values()) == ["final"] * PER_STATE


def test_callers_who_hung_up_in_the_gap_get_their_ledger_entry(
    dropped: dict[str, Any], config: Config
) -> None:
    for p in dropped["placed"]:
        if p.case == "caller hangs up in the gap":
            assert p.end is not None
            wait_until(
                lambda p=p: bool(call_entries_for(config, p.end.uniqueid)),
                timeout=10,
                what="the ledger entry",
            )


# -- slow ARI -----------------------------------------------------------------------------------


def _stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


@pytest.fixture(scope="module")
def slow(asterisk: AsteriskLab, config: Config, proxied: tuple[LabApp, TcpProxy]) -> dict[str, Any]:
    app, proxy = proxied
    t = route_timing(config, "support")
    since = asterisk.log_offset()
    mark = app.log_path.stat().st_size
    caller = Caller()
    digit_at = t.question_end + 0.5
    # the first call to ask for a play (its notice, and the question with it) is the stuck one:
    # the answer to that request comes 8 s late, so it times out (5 s)
    proxy.delay_requests("/play/", STUCK_SECONDS, times=1)
    for i in range(5):
        call = Call(
            to="support",
            caller_number=f"+4598500{i:04d}",
            timeline=_timeline(digit_at + TAIL + STUCK_SECONDS, digit_at, "1" if i % 2 else "2"),
        )
        caller.place("slow ARI for one call", call, TRAINING if i % 2 else Expect())
    stuck: list[str] = []

    def first_played() -> bool:  # POST /ari/channels/<id>/play/<playback id>?media=...
        for line in proxy.delayed:
            stuck.append(line.decode().split("/channels/", 1)[1].split("/", 1)[0])
            return True
        return False

    wait_until(first_played, timeout=20, what="the first call's play request", poll=0.005)
    time.sleep(STUCK_SECONDS + 1.0)
    proxy.clear_delays()
    placed = caller.wait(timeout=120)
    caller.close()
    settle(asterisk, placed, since)
    events = app_events(app.log_path, mark)
    entered = {e["channel_id"]: _stamp(e) for e in events if e.get("event") == "call_entered"}
    decided = {e["channel_id"]: _stamp(e) for e in events if e.get("event") == "consent_result"}
    flow = {cid: round(decided[cid] - entered[cid], 2) for cid in entered if cid in decided}
    others = [s for cid, s in flow.items() if cid != stuck[0]]
    proc = reconcile(config)
    result = check_case(config, "slow ARI for one call", placed)
    result.note += (
        f"; stuck call's flow {flow.get(stuck[0])} s, the others' "
        f"{min(others, default=0)}-{max(others, default=0)} s"
    )
    report(result)
    return {
        "placed": placed,
        "stuck": stuck[0],
        "flow": flow,
        "result": result,
        "delayed": list(proxy.delayed),
        # the stuck call's request that timed out: a play (ari_error) or, when its one play
        # (notice and question) went out before the delay, the result (set_result_failed)
        "timeouts": [
            e
            for e in events
            if e.get("channel_id") == stuck[0] and "no answer within" in str(e.get("error"))
        ],
        "expected_flow": digit_at,
        "reconcile": proc.stdout[-3000:],
    }


def test_one_slow_call_times_out_and_goes_on_unrecorded(slow: dict[str, Any]) -> None:
    stuck = slow["stuck"]
    (dest,) = [p.dest for p in slow["placed"] if p.dest and p.dest.uniqueid == stuck]
    assert dest.status != "given" and dest.recording == "", dest
    assert any(stuck in line.decode() for line in slow["delayed"])
    assert slow["timeouts"], "no request of the stuck call timed out"


def test_one_slow_call_never_delays_the_others(slow: dict[str, Any]) -> None:
    flow, stuck = slow["flow"], slow["stuck"]
    others = {cid: s for cid, s in flow.items() if cid != stuck}
    assert len(others) == 4, flow
    assert all(s <= slow["expected_flow"] + 1.5 for s in others.values()), flow
    assert not slow["result"].violations, (slow["result"].violations, slow["reconcile"])
    assert slow["result"].reached == 5, slow["result"].row()
