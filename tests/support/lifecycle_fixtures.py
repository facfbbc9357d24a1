"""Realistic evidence for the lifecycle tests, built with the real sidecar and ledger modules:
sidecars created, small real WAVs written and finalised, ``call`` entries shaped like
``callconsent.evidence.documents.ledger_entry`` output, ``recording_final`` entries as the app writes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from callconsent.config import Config, load_config
from callconsent.evidence import caller_keys, callers, sidecar
from callconsent.evidence.entries import recording_final_entry
from callconsent.evidence.ledger import Ledger
from callconsent.evidence.paths import RecordingPaths, ensure_directory, recording_paths
from callconsent.evidence.wav import pcm_header
from callconsent.lifecycle import Context

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
NUMBER = "+4512345678"
SOFTWARE = {"name": "callconsent", "version": "0.1.0"}
CONFIG_SHA = "ab" * 32
RETENTION = {"documentation": ("6(1)(f)", 90), "training": ("6(1)(a)", 30)}


def _consent(status: str, reason: str, at: datetime) -> dict[str, Any]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "status": status,
        "reason": reason,
        "digit": "1" if status == "given" else None,
        "question_id": "lab_training_v1",
        "question_version": "cd" * 32,
        "question_started_at": stamp,
        "question_ended_at": stamp,
        "digit_at": stamp if status == "given" else None,
        "attempts": 1,
    }


@dataclass
class Store:
    root: Path
    ledger_path: Path
    ledger: Ledger = field(init=False)
    #: False: ``call`` entries as ledgers before sealing held them (number and name in clear)
    sealed: bool = True

    def __post_init__(self) -> None:
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.ledger_path)

    def context(self, now: datetime, actor: str | None = "dpo-test") -> Context:
        return Context.create(self.root, self.ledger_path, now=now, actor=actor)

    def call(
        self,
        uniqueid: str,
        number: str | None = NUMBER,
        *,
        when: datetime = T0,
        purposes: tuple[str, ...] = ("documentation",),
        refused: bool = False,
        agent: str | None = None,
        audio: bytes | None = None,
        live: bool = False,
    ) -> RecordingPaths | None:
        """One call: a ``call`` ledger entry; with audio (not refused) a finalised recording
        (``live``: still recording, as while the call is up)."""
        call = {
            "uniqueid": uniqueid,
            "linkedid": uniqueid,
            "channel": f"PJSIP/trunk-{uniqueid}",
            "route": "mixed",
            "caller_number": number,
            "caller_name": "Test Caller",
            "dialled_number": "+4570000000",
        }
        entry_purposes, recorded = [], []
        for name in purposes:
            basis, days = RETENTION[name]
            consent = None
            status = "not_required"
            if name == "training":
                status = "refused" if refused else "given"
                consent = _consent(status, "timeout" if refused else "digit", when)
            entry_purposes.append(
                {
                    "purpose": name,
                    "lawful_basis": basis,
                    "retention_days": days,
                    "status": status,
                    "reason": "timeout" if refused else "digit",
                    "consent": consent,
                }
            )
            if status in ("given", "not_required"):
                recorded.append(name)
        paths = recording_paths(self.root, uniqueid, when) if recorded else None
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if paths is not None:
            ensure_directory(paths)
            kept = [p for p in entry_purposes if p["purpose"] in recorded]
            sidecar.create(
                paths,
                sidecar.recording_document(
                    paths,
                    call=call,
                    started_at=when,
                    language="da",
                    notices=[],
                    purposes=[
                        {k: p[k] for k in ("purpose", "lawful_basis", "retention_days", "consent")}
                        for p in kept
                    ],
                    delete_after=when + timedelta(days=max(p["retention_days"] for p in kept)),
                    tags=[f"purpose:{p}" for p in recorded] + ([f"agent:{agent}"] if agent else []),
                    software=SOFTWARE,
                    config_sha256=CONFIG_SHA,
                ),
            )
            data = audio if audio is not None else uniqueid.encode() * 200
            paths.audio.write_bytes(pcm_header(len(data)) + data)
            if not live:
                final = sidecar.finalise(paths, ended_at=when + timedelta(minutes=2))
        self.ledger.append(
            {
                "type": "call",
                "at": stamp,
                "call": self._ledger_call(call),
                "started_at": stamp,
                "status": "refused"
                if refused
                else ("given" if "training" in recorded else "not_required"),
                "reason": "timeout" if refused else None,
                "language": "da",
                "notices": [],
                "purposes": entry_purposes,
                "recorded_purposes": recorded,
                "recording": paths.relative if paths else None,
                "software": SOFTWARE,
                "config_sha256": CONFIG_SHA,
            }
        )
        if paths is not None and not live:
            self.ledger.append(recording_final_entry(final, at=when, source="app"))
        return paths

    def _ledger_call(self, call: dict[str, Any]) -> dict[str, Any]:
        """The call as the app writes it: the caller sealed, its key stored first."""
        if not self.sealed:
            return call
        secret = caller_keys.subject_key(self.ledger_path)
        caller, key = callers.seal(
            call["uniqueid"], call["caller_number"], call["caller_name"], secret
        )
        store = caller_keys.CallerKeys.beside(self.ledger_path)
        store.put([key] if key else [])
        store.close()
        return callers.ledger_call(call, caller)


def make_store(tmp_path: Path) -> Store:
    return Store(tmp_path / "recordings", tmp_path / "state" / "ledger.jsonl")


def make_config(tmp_path: Path) -> Config:
    data = copy.deepcopy(yaml.safe_load((REPO / "config" / "demo.yaml").read_text("utf-8")))
    data["storage"] = {
        "recordings_dir": str(tmp_path / "recordings"),
        "ledger_path": str(tmp_path / "state" / "ledger.jsonl"),
        "notice_archive_dir": str(tmp_path / "state" / "notices"),
    }
    path = tmp_path / "callconsent.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return load_config(path, env={"CALLCONSENT_ARI_PASSWORD": "callconsent-lab"})
