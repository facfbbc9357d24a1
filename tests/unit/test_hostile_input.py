"""Hostile caller IDs and dialled numbers (issue 11): the call gets the same outcome as a plain
one, nothing is written outside the recordings folder, and the text is stored as data, as the
hook kept it (CALLCONSENT_CALLERID_RAW_NUM/_NAME, read over ARI) or as Asterisk gave it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callconsent import names
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import Harness

CID = "1764000011.7"
#: Invalid UTF-8 from Asterisk arrives through ARI's JSON decoded with replacement characters
#: (or as lone surrogates when a client decodes with surrogateescape): both are data here.
PAYLOADS = {
    "dot_dot_slash": "../../../etc/passwd",
    "quotes": "\"'\"'; DROP TABLE calls; --",
    "semicolon_dollar": "123;$HOME;$(id);${PATH}",
    "backticks": "`reboot` `id`",
    "dialplan_expression": "${SHELL(id)}$[1+1]${CALLERID(num)}",
    "long": "9" * 300,
    "invalid_utf8_replaced": "+45\ufffd\ufffd\x00abc",
    "lone_surrogate": "+45\udcff\udcfe",
    "crlf_forged": "+45\r\nUniqueid: 1.1\r\n\r\nEvent: UserEvent",
}


def _harness(tmp_path: Path, text: str) -> Harness:
    h = Harness(tmp_path)
    h.ari.channel_vars[(CID, names.VAR_CALLERID_RAW_NUM)] = text
    h.ari.channel_vars[(CID, names.VAR_CALLERID_RAW_NAME)] = text[::-1]
    h.ari.dnid = text
    return h


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
async def test_hostile_caller_id_and_dialled_number_are_data_and_change_nothing(
    tmp_path: Path, payload: str
) -> None:
    text = PAYLOADS[payload]
    h = _harness(tmp_path, text)
    await h.start(CID, number="+4512345678", name="normalised by the hook")
    await h.play_through(CID)  # the notice
    await h.play_through(CID)  # the question
    await h.digit(CID, "1")

    recording = Path(h.ari.result(CID)["CALLCONSENT_RECORDING"])
    assert recording == h.recordings / recording.relative_to(h.recordings)
    assert recording.name == f"{CID}.wav"  # built from the uniqueid only
    (sidecar,) = h.sidecars()
    call = json.loads(sidecar.read_text(encoding="utf-8"))["call"]
    assert (call["caller_number"], call["caller_name"]) == (text, text[::-1])
    assert call["dialled_number"] == text
    (entry,) = h.ledger()
    assert (entry["status"], caller_of(entry, h.ledger_path).number) == ("given", text)
    assert len(h.ledger_path.read_bytes().splitlines()) == 1  # one line, whatever the text
    assert h.files_outside() == []
    raw = sidecar.read_bytes()
    assert b"\r" not in raw and b"\x00" not in raw  # escaped by JSON, never raw
    assert json.loads(raw)["call"]["caller_number"] == text


async def test_without_the_hooks_variables_the_caller_id_comes_from_ari(tmp_path: Path) -> None:
    h = Harness(tmp_path)  # an older hook: no CALLCONSENT_CALLERID_RAW_* on the channel
    await h.start(CID, number="+4511112222", name="Plain Caller")
    await h.play_through(CID)
    await h.play_through(CID)
    await h.digit(CID, "1")
    (entry,) = h.ledger()
    caller = caller_of(entry, h.ledger_path)
    assert (caller.number, caller.name) == ("+4511112222", "Plain Caller")
