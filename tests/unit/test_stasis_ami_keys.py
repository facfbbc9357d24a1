"""Whether AMI reports keys (callconsent.stasis_ami): after every AMI login the app subscribes
recorded calls over ARI until AMI has reported a key pressed in one of its calls, and says once
per login when ARI reports keys that AMI does not (an AMI user without the ``dtmf`` class or
without the ``DTMFEnd`` filter): a late objection key is never lost to an old manager.conf."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import structlog

from callconsent.stasis_ami import AmiCallEnds
from tests.support.late_keys import IN_QUEUE, IN_STASIS, Objections, dtmf_end
from tests.support.stasis_fakes import Harness

A, B, C = "1764000000.42", "1764000000.43", "1764000000.44"
WAIT = 0.05  # the key wait in these tests (seconds)


class Link:
    """AMI's side as the adapter sees it: logged in or not."""

    def __init__(self) -> None:
        self.connected = True


def wired(tmp_path: Path) -> tuple[Harness, AmiCallEnds, Link, Objections]:
    """The StasisApp wired to the adapter as ``serve`` wires them, AMI logged in once."""
    link, objections = Link(), Objections()
    ends = AmiCallEnds(connected=lambda: link.connected, key_wait_seconds=WAIT)
    h = Harness(
        tmp_path, ami_ends=ends.reporting, heard_key=ends.heard_over_ari, objections=objections
    )
    ends.attach(h.app, h.ari)
    ends.login()
    return h, ends, link, objections


async def consent(h: Harness, ends: AmiCallEnds, channel_id: str, *, ami_too: bool) -> None:
    """A caller on ``support`` presses 1 after the question: ARI reports the key (the flow's)
    and, with ``ami_too``, AMI reports it as well, on the Stasis() line."""
    await h.start(channel_id, "support")
    await h.play_through(channel_id)  # the notice
    await h.play_through(channel_id)  # the question
    await h.digit(channel_id, "1")
    if ami_too:
        ends.on_dtmf_end(dtmf_end(channel_id, "1", IN_STASIS))


async def docs_call(h: Harness, channel_id: str) -> None:
    """A documentation recording (no key pressed), out of Stasis afterwards."""
    await h.start(channel_id, "docs")
    await h.play_through(channel_id)
    await h.send(channel_id, {"type": "StasisEnd", "channel": {"id": channel_id}})


def subscribed(h: Harness) -> list[str]:
    return [str(args[1]) for args in h.ari.of("subscribe")]


def unheard(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "ami_keys_unheard"]


async def test_after_login_a_recorded_call_is_subscribed_until_ami_reports_a_key(
    tmp_path: Path,
) -> None:
    h, _ends, _link, _ = wired(tmp_path)
    await docs_call(h, A)
    assert subscribed(h) == [f"channel:{A}"]
    assert h.app.ami_watched() == []


async def test_once_ami_reports_a_key_of_an_app_call_recorded_calls_are_left_to_ami(
    tmp_path: Path,
) -> None:
    h, ends, _link, _ = wired(tmp_path)
    await consent(h, ends, A, ami_too=True)
    assert ends.reporting()
    await docs_call(h, B)
    assert f"channel:{B}" not in subscribed(h)
    assert B in h.app.ami_watched()


async def test_a_key_ami_reports_for_a_channel_the_app_does_not_know_proves_nothing(
    tmp_path: Path,
) -> None:
    h, ends, _link, _ = wired(tmp_path)
    ends.on_dtmf_end(dtmf_end(C, "1", IN_QUEUE))
    ends.on_dtmf_end({**dtmf_end(A, "1", IN_QUEUE), "Direction": "Sent"})
    assert not ends.reporting()
    await docs_call(h, B)
    assert subscribed(h) == [f"channel:{B}"]


async def test_every_login_needs_a_key_again(tmp_path: Path) -> None:
    h, ends, _link, _ = wired(tmp_path)
    await consent(h, ends, A, ami_too=True)
    ends.login()  # AMI came back: its user may have lost the dtmf class meanwhile
    assert not ends.reporting()
    await docs_call(h, B)
    assert f"channel:{B}" in subscribed(h)


async def test_ami_away_means_the_recording_is_subscribed_even_after_keys_were_heard(
    tmp_path: Path,
) -> None:
    h, ends, link, _ = wired(tmp_path)
    await consent(h, ends, A, ami_too=True)
    link.connected = False
    assert not ends.reporting()


async def test_without_amis_keys_a_late_objection_key_still_counts_over_ari(
    tmp_path: Path,
) -> None:
    h, ends, _link, objections = wired(tmp_path)
    await consent(h, ends, A, ami_too=False)
    await docs_call(h, B)
    await h.digit(B, "3")  # pressed in the queue: only the ARI subscription reports it
    assert objections.late == [(B, "3", "docs")]


async def test_keys_ari_reports_and_ami_does_not_are_reported_once_per_login(
    tmp_path: Path,
) -> None:
    h, ends, _link, _ = wired(tmp_path)
    with structlog.testing.capture_logs() as logs:
        await consent(h, ends, A, ami_too=False)
        await consent(h, ends, B, ami_too=False)
        await asyncio.sleep(WAIT * 4)
        assert len(unheard(logs)) == 1
        await consent(h, ends, C, ami_too=False)
        await asyncio.sleep(WAIT * 4)
        assert len(unheard(logs)) == 1  # said once for this login
        ends.login()
        await h.digit(C, "2")
        await asyncio.sleep(WAIT * 4)
    warnings = unheard(logs)
    assert len(warnings) == 2
    assert "read = call,user,dtmf" in warnings[0]["fix"]
    assert "DTMFEnd" in warnings[0]["fix"]


async def test_no_warning_when_ami_reports_the_key_within_the_wait(tmp_path: Path) -> None:
    h, ends, _link, _ = wired(tmp_path)
    with structlog.testing.capture_logs() as logs:
        await consent(h, ends, A, ami_too=False)
        await asyncio.sleep(WAIT / 5)
        ends.on_dtmf_end(dtmf_end(A, "1", IN_STASIS))  # AMI a little behind ARI
        await asyncio.sleep(WAIT * 4)
    assert unheard(logs) == []
    assert [e["event"] for e in logs if e["event"] == "ami_keys_heard"] == ["ami_keys_heard"]


async def test_no_warning_while_ami_is_away_or_logs_in_again_during_the_wait(
    tmp_path: Path,
) -> None:
    h, ends, link, _ = wired(tmp_path)
    with structlog.testing.capture_logs() as logs:
        link.connected = False
        await consent(h, ends, A, ami_too=False)  # AMI away: its keys cannot come
        await asyncio.sleep(WAIT * 4)
        link.connected = True
        await consent(h, ends, B, ami_too=False)
        ends.login()  # logged in again before the wait ended: that wait says nothing
        await asyncio.sleep(WAIT * 4)
    assert unheard(logs) == []
