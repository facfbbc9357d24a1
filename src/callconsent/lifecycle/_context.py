"""What every lifecycle job works with: the evidence locations, the ledger, the index, the
audit log, the clock reading and who is acting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from callconsent.evidence.ledger import Ledger
from callconsent.evidence.paths import RecordingPaths, paths_from_relative
from callconsent.lifecycle.audit import AUDIT_NAME, AuditLog
from callconsent.lifecycle.index import Index, index_path

if TYPE_CHECKING:
    from callconsent.config import Config


@dataclass(slots=True)
class Context:
    recordings_dir: Path
    ledger_path: Path
    ledger: Ledger
    index: Index
    audit: AuditLog
    now: datetime  # one reading of the (injectable) clock per run
    actor: str | None  # None: the OS user

    @classmethod
    def create(
        cls,
        recordings_dir: Path,
        ledger_path: Path,
        *,
        now: datetime,
        actor: str | None = None,
        anchor_path: Path | None = None,
    ) -> Context:
        ledger_path.parent.mkdir(parents=True, exist_ok=True)
        return cls(
            recordings_dir=recordings_dir,
            ledger_path=ledger_path,
            ledger=Ledger(ledger_path, anchor_path=anchor_path),
            index=Index(
                index_path(ledger_path), recordings_dir=recordings_dir, ledger_path=ledger_path
            ),
            audit=AuditLog(ledger_path.parent / AUDIT_NAME),
            now=now,
            actor=actor,
        )

    @classmethod
    def from_config(cls, config: Config, *, now: datetime, actor: str | None = None) -> Context:
        s = config.storage
        return cls.create(
            s.recordings_dir, s.ledger_path, now=now, actor=actor, anchor_path=s.anchor_path
        )

    def paths(self, relative: str) -> RecordingPaths:
        return paths_from_relative(self.recordings_dir, relative)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
