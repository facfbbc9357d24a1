"""EvidenceStore: sidecars beside recordings and ledger entries, on a real folder."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callconsent import store as store_module
from callconsent._store_held import HeldLines
from callconsent.agents.evidence import AgentEvidence
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence import paths, sidecar
from callconsent.evidence.documents import CallInfo
from callconsent.evidence.group_commit import GroupCommit
from callconsent.evidence.ledger import Ledger, verify_chain
from callconsent.evidence.paths import UnsafeIdentifier
from callconsent.store import EvidenceStore
from tests.support.sealed import caller_of
from tests.support.stasis_fakes import files_under, is_file, pcm_wav, schema_problems, write_audio

T0 = datetime(2026, 11, 24, 23, 59, 59, 999000, tzinfo=UTC)
SHA = "c" * 64
NOTICE = Prompt("lab_training_v1.notice", "sound:/p/da/lab-training-v1", "da", SHA)
QUESTION = Prompt("lab_training_v1.question", "sound:/p/da/lab-training-v1-question", "da", SHA)


def call(uniqueid: str = "1764000000.42", number: str | None = "4512345678") -> CallInfo:
    return CallInfo(uniqueid, uniqueid, "PJSIP/trunk-00000001", "support", number, "Anna", None)


def given() -> CallOutcome:
    purpose = PurposeOutcome(
        "training", "6(1)(a)", 30, "given", "digit", "1", QUESTION, T0, T0, T0, 1
    )
    return CallOutcome(
        route="support",
        language="da",
        status="given",
        reason="digit",
        notices=(NoticeEvidence(NOTICE, T0, T0, played=True),),
        purposes=(purpose,),
        recorded_purposes=("training",),
        entered_at=T0,
    )


#: The answering agent's consent at the bridge: a training recording needs it (R15).
AGENT = AgentEvidence("agent1", "given", T0, T0)


def refused() -> CallOutcome:
    purpose = PurposeOutcome("training", "6(1)(a)", 30, "refused", "timeout", None, QUESTION)
    return CallOutcome("support", "da", "refused", "timeout", (), (purpose,), (), T0)


@pytest.fixture
def store(tmp_path: Path) -> EvidenceStore:
    (tmp_path / "recordings").mkdir()
    return EvidenceStore(
        recordings_dir=tmp_path / "recordings",
        ledger_path=tmp_path / "ledger.jsonl",
        config_sha256="d" * 64,
        clock=lambda: T0 + timedelta(minutes=5),
    )


def ledger(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "ledger.jsonl").read_text(encoding="ascii").splitlines()
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert schema_problems("ledger-entry.schema.json", entry) == [], entry
    assert verify_chain(tmp_path / "ledger.jsonl") == []
    return entries


def sidecar_of(audio: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(audio.with_suffix(".json").read_text(encoding="ascii"))
    assert schema_problems("sidecar.schema.json", doc) == []
    return doc


async def test_prepare_recording_creates_the_date_folder_and_a_recording_sidecar(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(given(), call(), T0))

    assert audio == tmp_path / "recordings" / "2026" / "11" / "24" / "1764000000.42.wav"
    assert stat.S_IMODE(audio.parent.stat().st_mode) == 0o2770
    assert stat.S_IMODE(audio.with_suffix(".json").stat().st_mode) == 0o640
    doc = sidecar_of(audio)
    assert doc["state"] == "recording"
    assert doc["recording"]["file"] == "2026/11/24/1764000000.42.wav"
    assert doc["config_sha256"] == "d" * 64
    assert not is_file(audio)


async def test_a_date_folder_removed_after_one_call_is_made_again_for_the_next(
    tmp_path: Path, store: EvidenceStore
) -> None:
    first = Path(await store.prepare_recording(given(), call("1764000000.1"), T0))
    first.with_suffix(".json").unlink()
    first.parent.rmdir()  # e.g. an empty day folder tidied away by hand

    second = Path(await store.prepare_recording(given(), call("1764000000.2"), T0))

    assert second.parent == first.parent
    assert stat.S_IMODE(second.parent.stat().st_mode) == 0o2770
    assert sidecar_of(second)["state"] == "recording"


async def test_prepare_recording_twice_for_one_call_refuses_to_overwrite(
    store: EvidenceStore,
) -> None:
    await store.prepare_recording(given(), call(), T0)
    with pytest.raises(FileExistsError):
        await store.prepare_recording(given(), call(), T0)


async def test_prepare_recording_refuses_an_unsafe_uniqueid(
    tmp_path: Path, store: EvidenceStore
) -> None:
    with pytest.raises(UnsafeIdentifier):
        await store.prepare_recording(given(), call("../../x"), T0)
    assert files_under(tmp_path) == []


async def test_call_entry_names_the_recording_only_when_recorded(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.prepare_recording(given(), call("a.1"), T0)
    await store.write_call(given(), call("a.1"))
    await store.write_call(refused(), call("b.2"))

    recorded, unrecorded = ledger(tmp_path)
    assert (recorded["seq"], recorded["recording"]) == (1, "2026/11/24/a.1.wav")
    assert recorded["at"] == "2026-11-25T00:04:59.999Z"  # the store's clock
    assert (unrecorded["seq"], unrecorded["recording"]) == (2, None)
    assert unrecorded["call"]["uniqueid"] == "b.2"


async def test_recording_ended_finalises_the_sidecar_and_logs_it(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(given(), call(), T0))
    await store.write_call(given(), call())
    await store.agent_decided(call().uniqueid, AGENT, given=True)
    wav = pcm_wav(4000)
    write_audio(audio, wav)

    await store.recording_ended(call(), T0 + timedelta(minutes=3))

    doc = sidecar_of(audio)
    assert doc["state"] == "final"
    assert doc["recording"]["sha256"] == hashlib.sha256(wav).hexdigest()
    assert doc["recording"]["bytes"] == len(wav)
    assert doc["recording"]["duration_seconds"] == 0.5
    assert doc["recording"]["ended_at"] == "2026-11-25T00:02:59.999Z"
    assert [e["type"] for e in ledger(tmp_path)] == ["call", "agent_decision", "recording_final"]
    assert ledger(tmp_path)[2]["source"] == "app"


async def test_a_finalise_slower_than_the_close_wait_still_writes_its_ledger_line(
    tmp_path: Path, store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time limit is for MixMonitor to close the file; once the worker finalises the
    sidecar, the ``recording_final`` line follows, however long the worker took."""
    monkeypatch.setattr(store_module, "FINALISE_TIMEOUT_SECONDS", 0.2)
    prepare_final = sidecar.prepare_final

    def slow_prepare_final(*args: Any, **kwargs: Any) -> dict[str, Any]:
        time.sleep(0.5)  # a busy disk, in the worker thread
        return prepare_final(*args, **kwargs)

    monkeypatch.setattr(sidecar, "prepare_final", slow_prepare_final)
    audio = Path(await store.prepare_recording(given(), call(), T0))
    await store.write_call(given(), call())
    await store.agent_decided(call().uniqueid, AGENT, given=True)
    write_audio(audio, pcm_wav(4000))

    await store.recording_ended(call(), T0 + timedelta(minutes=3))

    assert sidecar_of(audio)["state"] == "final"
    assert [e["type"] for e in ledger(tmp_path)] == ["call", "agent_decision", "recording_final"]


async def test_a_sidecar_another_process_rewrote_during_the_call_is_read_again(
    tmp_path: Path, store: EvidenceStore
) -> None:
    """The store remembers what it wrote, but never finalises over another writer's change."""
    audio = Path(await store.prepare_recording(given(), call(), T0))
    await store.agent_decided(call().uniqueid, AGENT, given=True)
    where = paths.recording_paths(tmp_path / "recordings", call().uniqueid, T0)
    changed = sidecar.load(where)
    changed["tags"] = [*changed["tags"], "case:elsewhere-1"]
    sidecar.write(where, changed)  # as the lifecycle CLI writes: atomically, a new file
    write_audio(audio, pcm_wav(4000))

    await store.recording_ended(call(), T0 + timedelta(minutes=3))

    doc = sidecar_of(audio)
    assert doc["state"] == "final"
    assert "case:elsewhere-1" in doc["tags"]


async def test_header_only_recording_is_deleted_and_tombstoned(
    tmp_path: Path, store: EvidenceStore
) -> None:
    audio = Path(await store.prepare_recording(given(), call(), T0))
    await store.agent_decided(call().uniqueid, AGENT, given=True)
    write_audio(audio, pcm_wav(0))

    await store.recording_ended(call(), T0 + timedelta(minutes=3))

    assert not is_file(audio)
    doc = sidecar_of(audio)
    assert doc["state"] == "tombstone" and doc["reason"] == "no_audio"
    assert doc["recording"]["sha256"] == hashlib.sha256(pcm_wav(0)).hexdigest()
    entries = ledger(tmp_path)
    assert [e["type"] for e in entries] == ["agent_decision", "recording_final", "deleted"]
    assert entries[2]["reason"] == "no_audio"


async def test_recording_ended_for_an_unknown_or_finished_call_does_nothing(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.recording_ended(call("never.1"), T0)
    assert not (tmp_path / "ledger.jsonl").exists()

    audio = Path(await store.prepare_recording(given(), call(), T0))
    await store.agent_decided(call().uniqueid, AGENT, given=True)
    write_audio(audio, pcm_wav(800))
    await store.recording_ended(call(), T0)
    await store.recording_ended(call(), T0)  # a second ChannelDestroyed
    assert [e["type"] for e in ledger(tmp_path)] == ["agent_decision", "recording_final"]


async def test_unhandled_call_entry_is_written_and_valid(
    tmp_path: Path, store: EvidenceStore
) -> None:
    await store.write_unhandled(call(number="../../etc/passwd\r\n"), "error", "unknown_route")

    (entry,) = ledger(tmp_path)
    assert (entry["status"], entry["reason"]) == ("error", "unknown_route")
    assert caller_of(entry, tmp_path / "ledger.jsonl").number == "../../etc/passwd\r\n"
    assert b"passwd" not in (tmp_path / "ledger.jsonl").read_bytes()


async def test_concurrent_writes_keep_one_unbroken_chain(
    tmp_path: Path, store: EvidenceStore
) -> None:
    ids = [f"1764000005.{n}" for n in range(20)]
    await asyncio.gather(*(store.prepare_recording(given(), call(i), T0) for i in ids))
    await asyncio.gather(*(store.write_call(given(), call(i)) for i in ids))

    entries = ledger(tmp_path)
    assert [e["seq"] for e in entries] == list(range(1, 21))
    assert sorted(e["call"]["uniqueid"] for e in entries) == sorted(ids)
    assert all(e["recording"].endswith(f"/{e['call']['uniqueid']}.wav") for e in entries)


def _note(n: int) -> dict[str, Any]:
    return {"type": "note", "at": "2026-11-24T12:00:00.123Z", "call": {"uniqueid": f"c.{n}"}}


async def test_held_lines_are_written_in_order_and_the_oldest_dropped_beyond_the_limit(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.jsonl"
    writer = GroupCommit(Ledger(path, validate=False))
    held = HeldLines(limit=2)
    for n in range(3):
        held.hold(_note(n), ())
    path.mkdir()  # still refused: nothing is lost, nothing written
    await held.flush(writer)
    assert len(held) == 2
    path.rmdir()
    await held.flush(writer)
    writer.close()
    assert len(held) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["call"]["uniqueid"] for e in lines] == ["c.1", "c.2"]  # c.0: over the limit
    assert verify_chain(path) == []
