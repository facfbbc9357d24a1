"""What every lifecycle job works with: the evidence locations, the ledger, the index, the
audit log, the clock reading and who is acting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from callconsent.evidence.ledger import Ledger
from callconsent.evidence.paths import RecordingPaths, paths_from_relative
from callconsent.lifecycle.audit import AUDIT_NAME, AuditLog
from callconsent.lifecycle.errors import LifecycleError, StorageError, storage_error
from callconsent.lifecycle.index import Index, index_path

if TYPE_CHECKING:
    from callconsent.config import Config

#: The years a run may act in (``--now``): evidence times are four-digit UTC stamps, and every
#: period added to or taken from the time must stay inside what a date can hold.
MIN_YEAR: Final = 1970
MAX_YEAR: Final = 9000


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
        """The context for one run. :class:`~.errors.LifecycleError` (never a traceback) for a
        time out of range, a ledger path that is a folder or a folder that cannot be made."""
        if not MIN_YEAR <= now.year <= MAX_YEAR:
            raise LifecycleError(
                f"the time {now.isoformat()} is out of range: a lifecycle run acts between "
                f"{MIN_YEAR} and {MAX_YEAR}"
            )
        if ledger_path.is_dir():
            raise StorageError(f"{ledger_path}: the ledger path is a folder, not a file")
        try:
            ledger_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error("create the ledger's folder", ledger_path.parent, exc) from exc
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

    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``record`` to the ledger; a write that fails (disk full, permission) raises
        :class:`~.errors.StorageError` naming the ledger, and leaves no torn line."""
        try:
            return self.ledger.append(record)
        except OSError as exc:
            raise storage_error("append to the ledger", self.ledger_path, exc) from exc

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
