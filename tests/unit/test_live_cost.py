"""What keeps the live path cheap and measurable: the ARI event filter, the per-call timing line."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callconsent._stasis_events import translate
from callconsent.ari import READ_AT, AriClient
from callconsent.clock import utc_now
from callconsent.stasis import USED_EVENTS
from callconsent.timing import call_timing
from tests.support import FakeAriServer
from tests.support.stasis_fakes import Harness, ari_error, channel_event, stasis_start

CID = "1764000000.42"


@pytest.fixture
async def server() -> AsyncIterator[FakeAriServer]:
    async with FakeAriServer(password="pw") as fake:
        yield fake


async def test_filter_events_puts_the_allowed_and_disallowed_types_as_a_json_body(
    server: FakeAriServer,
) -> None:
    ari = AriClient(server.base_url, "asterisk", "pw", "callconsent", request_timeout=1.0)
    try:
        await ari.filter_events(["ChannelVarset"], allowed=["StasisStart", "StasisEnd"])
        await ari.filter_events(allowed=["StasisStart"])
    finally:
        await ari.close()

    both, allowed_only = server.calls_to("PUT", "applications", "callconsent", "eventFilter")
    assert json.loads(both.body) == {
        "allowed": [{"type": "StasisStart"}, {"type": "StasisEnd"}],
        "disallowed": [{"type": "ChannelVarset"}],
    }
    assert json.loads(allowed_only.body) == {"allowed": [{"type": "StasisStart"}]}


def test_every_event_the_consent_machine_hears_is_let_through() -> None:
    kinds = [
        "StasisStart",
        "StasisEnd",
        "ChannelDestroyed",
        "ChannelHangupRequest",
        "ChannelDtmfReceived",
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "ChannelVarset",
        "ChannelDialplan",
        "ChannelStateChange",
        "Dial",
        "ChannelConnectedLine",
        "ChannelUserevent",
        "ChannelHold",
    ]
    event = {"timestamp": "2026-12-05T10:00:00.000+0000", "playback": {"id": "p"}, "digit": "1"}
    heard = {kind for kind in kinds if translate(kind, event, utc_now) is not None}
    assert heard >= {"StasisEnd", "ChannelDtmfReceived", "PlaybackStarted", "PlaybackContinuing"}
    assert heard <= set(USED_EVENTS)
    assert "ApplicationReplaced" in USED_EVENTS  # the client reconnects on it
    assert "StasisStart" in USED_EVENTS and "ChannelVarset" not in USED_EVENTS


async def test_every_connect_asks_for_the_used_events_only_before_reconciling(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)

    await h.app.on_connected()

    assert h.ari.calls[0] == ("filter_events", (), USED_EVENTS)
    assert h.ari.calls[1] == ("application_channel_ids",)


async def test_a_failed_event_filter_still_reconciles(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.ari.fail["filter_events"] = ari_error("PUT", "/applications/callconsent/eventFilter")
    h.ari.in_stasis = ["1764000002.1"]

    with capture_logs() as logs:
        await h.app.on_connected()

    assert any(e["event"] == "event_filter_failed" for e in logs)
    assert h.ari.continues("1764000002.1") == 1


async def test_a_finished_call_logs_one_timing_line(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    with capture_logs() as logs:
        await h.answer_question(CID, "1")
        await h.send(CID, channel_event("StasisEnd", CID))
        await h.send(CID, channel_event("ChannelDestroyed", CID))

    (timing,) = [e for e in logs if e["event"] == "call_timing"]
    assert timing["channel_id"] == CID
    assert timing["notice_ms"] >= 0
    # split at the play request (ARI's time stamps have whole milliseconds: either part may
    # read a fraction below 0)
    assert timing["notice_app_ms"] + timing["notice_play_ms"] == pytest.approx(
        timing["notice_ms"], abs=0.2
    )
    assert "notice_event_ms" not in timing  # the fake's StasisStart was never read off a socket
    assert timing["continue_ms"] >= 0
    assert timing["continued_at"] >= timing["digit_at"]


async def test_the_timing_line_splits_the_notice_where_the_client_read_the_stasis_start(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    with capture_logs() as logs:
        start = stasis_start(CID)
        start[READ_AT] = time.time()
        await h.send(CID, start)
        await h.play_through(CID)
        await h.hangup(CID)

    (timing,) = [e for e in logs if e["event"] == "call_timing"]
    assert timing["notice_event_ms"] + timing["notice_queue_ms"] == pytest.approx(
        timing["notice_app_ms"], abs=0.2
    )
    assert timing["notice_queue_ms"] >= 0


def test_call_timing_leaves_out_what_the_call_never_reached() -> None:
    marks = {"start": 100.0, "notice": 100.012, "digit": 105.5}

    assert call_timing(marks) == {"notice_ms": 12.0, "digit_at": 105.5}


def test_call_timing_splits_the_notice_time_at_the_play_request() -> None:
    marks = {"start": 100.0, "play_sent": 100.004, "notice": 100.012}
    timing = call_timing(marks)
    assert timing["notice_ms"] == 12.0
    assert (timing["notice_app_ms"], timing["notice_play_ms"]) == (4.0, 8.0)


def test_call_timing_splits_the_apps_part_where_the_client_read_the_stasis_start() -> None:
    marks = {"start": 100.0, "read": 100.003, "play_sent": 100.004, "notice": 100.012}
    timing = call_timing(marks)
    assert (timing["notice_event_ms"], timing["notice_queue_ms"]) == (3.0, 1.0)
    assert timing["notice_event_ms"] + timing["notice_queue_ms"] == timing["notice_app_ms"]


def test_call_timing_measures_the_decision_to_the_continue() -> None:
    marks = {"decided": 200.0, "continued": 200.0031}

    assert call_timing(marks) == {"continue_ms": 3.1, "continued_at": 200.003}


def test_call_timing_splits_the_keypress_to_decision_time_from_the_continue() -> None:
    marks = {"digit": 100.0, "decided": 100.25, "continued": 100.26}
    timing = call_timing(marks)
    assert timing["decide_ms"] == 250.0
    assert timing["continue_ms"] == 10.0
