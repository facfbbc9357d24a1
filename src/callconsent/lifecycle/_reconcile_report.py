"""What a ``reconcile`` run did (or would do) and what it left for a person."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ReconcileItem:
    path: Path
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class ReconcileReport:
    dry_run: bool
    fixed: list[ReconcileItem] = field(default_factory=list)  # done, or would be in a dry run
    reported: list[ReconcileItem] = field(default_factory=list)  # left for a person
    in_progress: int = 0  # skipped: may still be written
    checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.reported

    def as_dict(self) -> dict[str, Any]:
        """For ``--json`` output."""

        def items(found: list[ReconcileItem]) -> list[dict[str, str]]:
            return [{"path": str(i.path), "kind": i.kind, "detail": i.detail} for i in found]

        return {
            "dry_run": self.dry_run,
            "clean": self.clean,
            "checked": self.checked,
            "in_progress": self.in_progress,
            "fixed": items(self.fixed),
            "reported": items(self.reported),
        }

    def summary(self) -> str:
        """One line per fix and per report, then a count line."""
        done = "would fix" if self.dry_run else "fixed"
        lines = [f"{done}: {i}" for i in self.fixed] + [f"report: {i}" for i in self.reported]
        lines.append(
            f"reconcile: {self.checked} checked, {len(self.fixed)} {done}, "
            f"{len(self.reported)} to look at, {self.in_progress} possibly in progress (skipped)"
        )
        return "\n".join(lines)
