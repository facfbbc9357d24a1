"""The ARI adapter after the decisive digit of a recorded call: the independent steps overlap
(the sidecar with the channel's subscription, the ledger line with the result variables) and
every guarantee holds whichever fails: nothing continues recorded before its ledger line is
durable, a half-made preparation is undone, a result saying "record" is replaced before the
call continues unrecorded."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from callconsent import names
from callconsent.consent import CallOutcome
from callconsent.evidence.documents import CallInfo
from tests.support.ledger_faults import GatedLedger, RefusingLedger
from tests.support.stasis_fakes import Harness, ari_error, eventually

REC, REASON, STATUS = names.VAR_RECORDING, names.VAR_REASON, names.VAR_STATUS
CID = "1764000000.42"
SOURCE = f"channel:{CID}"
#: the extra variables a training recording that waits for the agent sets (demo route support)
RECORDED_EXTRA = (
    names.VAR_RECORD_AT,
    "__" + names.VAR_CALLER,
    "__" + names.VAR_AGENT_PURPOSES,
    "__" + names.VAR_AGENT_WAIT,
    names.VAR_WITHDRAW_KEEPS,
    names.VAR_WITHDRAW_PROMPT,
    names.VAR_WITHDRAWABLE,
)


def sidecar_doc(h: Harness) -> dict[str, Any]:
    (path,) = h.sidecars()
    doc: dict[str, Any] = json.loads(path.read_text(encoding="ascii"))
    return doc


def block_recordings(h: Harness) -> None:
    """The recordings folder is a file: no sidecar can be made."""
    h.recordings.rmdir()
    h.recordings.write_text("not a folder")


def ari_order(h: Harness) -> list[str]:
    wanted = ("subscribe", "unsubscribe", "set_variables", "continue_in_dialplan")
    return [c[0] for c in h.ari.calls if c[0] in wanted]


# -- the sidecar and the subscription, at once ----------------------------------------------


async def test_the_channel_is_subscribed_while_the_sidecar_is_being_made(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    real = h.store.prepare_recording

    async def waits_for_the_subscription(
        outcome: CallOutcome, call: CallInfo, started: datetime
    ) -> str:
        # one after the other, the subscription would only come after this returned: a timeout
        await eventually(lambda: ("subscribe", SOURCE) in h.ari.calls, within=1.0)
        return await real(outcome, call, started)

    h.store.prepare_recording = waits_for_the_subscription  # type: ignore[method-assign]
    await h.answer_question(CID, "1")

    assert h.ari.result(CID)[STATUS] == "given" and h.ari.result(CID)[REC]
    assert h.ari.continues(CID) == 1
    assert sidecar_doc(h)["state"] == "recording"
    assert h.store.live_recordings() == [CID]


async def test_a_sidecar_that_cannot_be_made_drops_the_subscription_made_meanwhile(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    block_recordings(h)

    await h.answer_question(CID, "1")

    assert ari_order(h) == ["subscribe", "unsubscribe", "set_variables", "continue_in_dialplan"]
    assert ("unsubscribe", SOURCE) in h.ari.calls
    assert (h.ari.result(CID)[STATUS], h.ari.result(CID)[REASON]) == ("error", "storage_error")
    assert h.ari.result(CID)[REC] == ""
    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["reason"], line["recording"]) == ("error", "storage_error", None)
    assert h.store.live_recordings() == []


async def test_a_refused_unsubscribe_after_a_failed_sidecar_still_continues_unrecorded(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    block_recordings(h)
    h.ari.fail["unsubscribe"] = ari_error("DELETE", "/applications/callconsent/subscription")

    await h.answer_question(CID, "1")

    assert (h.ari.result(CID)[STATUS], h.ari.result(CID)[REASON]) == ("error", "storage_error")
    assert h.ari.continues(CID) == 1
    (line,) = h.calls_in_ledger(CID)
    assert line["reason"] == "storage_error"


async def test_a_failed_subscription_tombstones_the_sidecar_made_meanwhile_and_says_ari_error(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.ari.fail["subscribe"] = ari_error("POST", "/applications/callconsent/subscription")

    await h.answer_question(CID, "1")

    assert ("unsubscribe", SOURCE) not in h.ari.calls
    assert (h.ari.result(CID)[STATUS], h.ari.result(CID)[REASON]) == ("error", "ari_error")
    assert h.ari.result(CID)[REC] == ""
    assert h.ari.continues(CID) == 1
    doc = sidecar_doc(h)
    assert (doc["state"], doc["reason"]) == ("tombstone", "not_started")
    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["reason"], line["recording"]) == ("error", "ari_error", None)
    assert h.store.live_recordings() == []


async def test_both_halves_failing_say_storage_error_and_leave_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    block_recordings(h)
    h.ari.fail["subscribe"] = ari_error("POST", "/applications/callconsent/subscription")

    await h.answer_question(CID, "1")

    assert ("unsubscribe", SOURCE) not in h.ari.calls  # nothing was subscribed
    assert h.ari.result(CID)[REASON] == "storage_error"
    assert h.ari.continues(CID) == 1
    assert h.store.live_recordings() == []


# -- the ledger line and the result, at once --------------------------------------------------


async def _held_at_the_line(h: Harness, gated: GatedLedger) -> asyncio.Task[None]:
    """The call answered "1"; its ledger line is held (a slow fsync) once the result is set."""
    call = asyncio.create_task(h.answer_question(CID, "1"))
    await eventually(lambda: gated.waiting == 1 and bool(h.ari.of("set_variables", CID)))
    return call


async def test_the_result_is_set_while_the_line_is_written_and_the_call_waits_for_it(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    gated = GatedLedger(h.store)
    call = await _held_at_the_line(h, gated)

    assert h.ari.result(CID)[STATUS] == "given" and h.ari.result(CID)[REC]
    await asyncio.sleep(0.05)
    assert h.ari.continues(CID) == 0  # never continued before the line is durable
    gated.gate.set()
    await call

    assert h.ari.continues(CID) == 1
    assert ari_order(h)[-2:] == ["set_variables", "continue_in_dialplan"]
    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["recorded_purposes"]) == ("given", ["training"])


async def test_a_line_refused_after_the_result_said_record_replaces_it_before_continuing(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    refusing = RefusingLedger(h.store, times=1)

    await h.answer_question(CID, "1")

    assert [r["status"] for r in refusing.refused] == ["given"]
    first, second = (c[2] for c in h.ari.of("set_variables", CID))
    assert dict(first)[STATUS] == "given" and dict(first)[REC]
    assert [n for n, _ in first][: len(RECORDED_EXTRA)] == list(RECORDED_EXTRA)
    # the path cleared first, every extra variable of "record" cleared, STATUS last
    assert second[0] == (REC, "")
    assert {n for n, v in second if v == ""} >= {REC, *RECORDED_EXTRA}
    assert second[-3:] == ((REC, ""), (REASON, "storage_error"), (STATUS, "error"))
    assert ari_order(h)[-3:] == ["set_variables", "set_variables", "continue_in_dialplan"]
    assert h.ari.continues(CID) == 1
    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["reason"], line["recorded_purposes"]) == (
        "error",
        "storage_error",
        [],
    )
    doc = sidecar_doc(h)
    assert (doc["state"], doc["reason"]) == ("tombstone", "storage_error")
    assert h.store.live_recordings() == []


async def test_a_caller_who_hangs_up_while_the_line_is_written_leaves_one_line_and_no_recording(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    gated = GatedLedger(h.store)
    call = await _held_at_the_line(h, gated)
    h.ari.gone.add(CID)
    hangup = asyncio.create_task(h.hangup(CID))
    await asyncio.sleep(0.05)  # the hangup waits for the call's events in progress

    gated.gate.set()
    await asyncio.gather(call, hangup)

    (line,) = h.calls_in_ledger(CID)
    assert (line["status"], line["recorded_purposes"]) == ("given", ["training"])
    await eventually(lambda: sidecar_doc(h)["state"] == "tombstone")
    assert h.store.live_recordings() == []
    assert h.app.active_calls == 0


async def test_a_slow_line_and_a_slow_result_overlap_rather_than_add_up(tmp_path: Path) -> None:
    """Each takes 0.3 s: one after the other the call would continue after >= 0.6 s."""
    h = Harness(tmp_path)
    gated = GatedLedger(h.store)
    real_set = h.ari.set_variables

    async def slow_set(channel_id: str, pairs: Any) -> None:
        await asyncio.sleep(0.3)
        await real_set(channel_id, pairs)

    h.ari.set_variables = slow_set  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    call = asyncio.create_task(h.answer_question(CID, "1"))
    await eventually(lambda: gated.waiting == 1)
    started = loop.time()
    loop.call_later(0.3, gated.gate.set)
    await call
    took = loop.time() - started

    assert h.ari.continues(CID) == 1
    assert took < 0.55, took


# -- the question's stop, not waited for by the disk ----------------------------------------


async def test_a_yes_during_the_question_prepares_while_it_stops_and_continues_after_it(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    order: list[str] = []
    real_stop, real_prepare = h.ari.stop_playback, h.store.prepare_recording
    real_set, real_continue = h.ari.set_variables, h.ari.continue_in_dialplan

    async def slow_stop(playback_id: str) -> None:
        order.append("stop sent")
        await asyncio.sleep(0.2)  # Asterisk answers late under load
        await real_stop(playback_id)
        order.append("stopped")

    async def prepare(outcome: CallOutcome, call: CallInfo, started: datetime) -> str:
        order.append("sidecar")
        return await real_prepare(outcome, call, started)

    async def set_variables(channel_id: str, pairs: Any) -> None:
        order.append("result")
        await real_set(channel_id, pairs)

    async def continue_in_dialplan(channel_id: str) -> None:
        order.append("continue")
        await real_continue(channel_id)

    h.ari.stop_playback = slow_stop  # type: ignore[method-assign]
    h.store.prepare_recording = prepare  # type: ignore[method-assign]
    h.ari.set_variables = set_variables  # type: ignore[method-assign]
    h.ari.continue_in_dialplan = continue_in_dialplan  # type: ignore[method-assign]
    await h.start(CID)
    await h.play_through(CID)  # the notice
    await h.play_started(CID)  # the question is playing
    await h.digit(CID, "1")

    assert order == ["stop sent", "sidecar", "stopped", "result", "continue"]
    assert h.ari.result(CID)[STATUS] == "given"
