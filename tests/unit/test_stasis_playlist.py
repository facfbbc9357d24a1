"""The ARI adapter plays the last notice and the first consent question as one playlist (one
play request; Asterisk reports the switch with PlaybackContinuing): the evidence keeps its
meaning. (The FastAGI flow's machine has no playlists: tests/unit/test_consent_playlist.py.)"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from callconsent._stasis_events import translate
from callconsent.clock import utc_now
from callconsent.consent import PlaybackContinuing
from tests.support.stasis_fakes import Harness, eventually, playback_event

CID = "1764000000.77"


async def test_a_consenting_call_makes_one_play_request_for_notice_and_question(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID, timestamp="2026-12-05T10:00:00.000+0000")
    await h.play_finished(CID, timestamp="2026-12-05T10:00:06.500+0000")  # the switch
    await h.play_started(CID, timestamp="2026-12-05T10:00:06.510+0000")
    await h.digit(CID, "1")  # while the question plays

    ((media, pid),) = h.ari.plays(CID)
    notice, question = media
    assert notice.endswith("/da/lab-training-v1") and question.endswith(
        "/da/lab-training-v1-question"
    )
    assert h.ari.of("stop_playback") == [("stop_playback", pid)]  # the key stops the question
    (entry,) = h.calls_in_ledger(CID)
    (notice_evidence,) = entry["notices"]
    assert notice_evidence["played"] is True
    assert notice_evidence["ended_at"] == "2026-12-05T10:00:06.500Z"
    consent = entry["purposes"][0]["consent"]
    assert (consent["status"], consent["question_started_at"]) == (
        "given",
        "2026-12-05T10:00:06.500Z",
    )


async def test_a_key_before_the_switch_is_not_consent_and_the_playlist_plays_on(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, timeout=0.05)
    await h.start(CID)
    await h.play_started(CID)
    await h.digit(CID, "1")  # during the notice
    assert h.ari.of("stop_playback") == [] and h.ari.variables(CID) == []
    await h.play_finished(CID)  # the switch
    await h.play_through(CID)  # the question, then silence: refused by the timeout
    await eventually(lambda: bool(h.calls_in_ledger(CID)))
    (entry,) = h.calls_in_ledger(CID)
    assert (entry["status"], entry["reason"]) == ("refused", "timeout")


async def test_a_notice_failing_in_a_playlist_stops_it_and_records_nothing(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    await h.start(CID)
    await h.play_started(CID)
    await h.play_finished(CID, state="failed")

    ((_, pid),) = h.ari.plays(CID)
    assert h.ari.of("stop_playback") == [("stop_playback", pid)]
    (entry,) = h.calls_in_ledger(CID)
    assert (entry["status"], entry["reason"]) == ("error", "notice_failed")
    assert entry["notices"][0]["played"] is False and h.sidecars() == []


async def test_a_question_file_missing_at_the_call_plays_notice_and_question_apart(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    for file in (tmp_path / "prompts" / "da").glob("lab-training-v1-question.*"):
        file.unlink()
    await h.start(CID)
    ((media, _),) = h.ari.plays(CID)
    assert isinstance(media, str) and media.endswith("/da/lab-training-v1")
    await h.play_through(CID)  # the notice; the question cannot play (R4): refused

    (entry,) = h.calls_in_ledger(CID)
    assert entry["purposes"][0]["consent"]["status"] == "refused"
    assert len(h.ari.plays(CID)) == 1  # a missing file is never sent to Asterisk


def test_playback_continuing_is_read_as_the_switch() -> None:
    event = playback_event("PlaybackContinuing", CID, "p1", "continuing", "2026-12-05T10:00:01Z")
    translated = translate("PlaybackContinuing", event, utc_now)
    assert translated == PlaybackContinuing("p1", datetime.fromisoformat("2026-12-05T10:00:01Z"))
