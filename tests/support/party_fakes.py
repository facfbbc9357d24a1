"""Fakes for the party adapter (R1, R2): an AMI that records the actions it is asked for, and a
documentation recording made live in a real evidence store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callconsent.ami import AmiError
from callconsent.consent import CallOutcome, NoticeEvidence, Prompt, PurposeOutcome
from callconsent.evidence.documents import CallInfo
from callconsent.store import EvidenceStore
from tests.support.stasis_fakes import pcm_wav, schema_problems, write_audio

T0 = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
CALLER = "1795510800.42"  # uniqueid: epoch of T0 (the store finds a sidecar by it)
_NOTICE = Prompt("lab_docs_v1.notice", "sound:/p/da/x", "da", "c" * 64)


class PartyAmi:
    """Records ``(action, channel, *args)``; actions named in ``fail`` raise :class:`AmiError`."""

    def __init__(self, *, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail or set()

    async def _do(self, *call: str) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise AmiError(call[0], "No such channel")

    async def stop_mixmonitor(self, channel: str) -> None:
        await self._do("StopMixMonitor", channel)

    async def mixmonitor_mute(self, channel: str, *, mute: bool) -> None:
        await self._do("MixMonitorMute", channel, "1" if mute else "0")


class NoAgents:
    def get(self, agent_id: str) -> None:
        return None


def documentation_outcome() -> CallOutcome:
    docs = PurposeOutcome("documentation", "6(1)(f)", 90, "not_required", "no_consent_needed")
    return CallOutcome(
        "docs",
        "da",
        "not_required",
        "no_consent_needed",
        (NoticeEvidence(_NOTICE, T0, T0, played=True),),
        (docs,),
        ("documentation",),
        T0,
    )


async def documentation_recording(store: EvidenceStore, caller: str = CALLER) -> Path:
    """A live documentation recording of ``caller`` (its audio file exists)."""
    info = CallInfo(caller, caller, "PJSIP/lab-caller-1", "docs", "+4512345678", "A", None)
    audio = Path(await store.prepare_recording(documentation_outcome(), info, T0))
    write_audio(audio, pcm_wav(800))
    return audio


def sidecar_doc(audio: Path) -> dict[str, Any]:
    """The sidecar beside ``audio``, checked against the schema."""
    doc: dict[str, Any] = json.loads(audio.with_suffix(".json").read_text())
    assert schema_problems("sidecar.schema.json", doc) == []
    return doc
