"""``identify FILE`` (R37): map an exported or leaked copy back to its recording and export.

By exact sha256: over every final sidecar and tombstone in the index (a tombstone keeps the
hash of the deleted audio, so a copy of a deleted recording is still recognised) and over every
file logged by an ``export`` ledger entry (audio, sidecar copies and the archive itself). A
re-encoded copy has another hash and is not found (no audio watermark is built).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callconsent.evidence.fsio import sha256_file
from callconsent.lifecycle._context import Context
from callconsent.lifecycle.errors import LifecycleError


@dataclass(slots=True)
class Identified:
    file: str
    sha256: str
    recordings: list[dict[str, Any]] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.recordings or self.exports)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "found": self.found,
            "recordings": self.recordings,
            "exports": self.exports,
        }

    def summary(self) -> str:
        lines = [f"{self.file}: sha256 {self.sha256}"]
        lines += [
            f"recording: call {r['call_id']} {r['file']} ({r['state']})" for r in self.recordings
        ]
        lines += [
            f"export: {e['export_id']} as {e['name']} (call {e['call_id']}) at {e['at']} "
            f"by {e['actor']}, reason: {e['reason']}"
            for e in self.exports
        ]
        if not self.found:
            lines.append("not found: no recording or export has this sha256")
        return "\n".join(lines)


class IdentifyError(LifecycleError):
    """The file to identify cannot be read."""


def identify(ctx: Context, file: Path) -> Identified:
    """Look up ``file`` by its sha256. Audited (the file name and hash, not its content)."""
    try:
        _, digest = sha256_file(file)
    except OSError as exc:
        raise IdentifyError(f"{file}: cannot read it: {exc.strerror or exc}") from exc
    result = Identified(str(file), digest)
    with ctx.index.locked(shared=True):
        ctx.index.update()
        db = ctx.index.db
        for uid, rel, state in db.execute(
            "SELECT uniqueid, file, state FROM recordings WHERE sha256=? ORDER BY uniqueid",
            (digest,),
        ):
            result.recordings.append({"call_id": uid, "file": rel, "state": state})
        for export_id, uid, name, at, actor, reason in db.execute(
            "SELECT f.export_id, f.uniqueid, f.name, e.at, e.actor, e.reason FROM export_files f"
            " LEFT JOIN exports e ON e.export_id = f.export_id WHERE f.sha256=? ORDER BY e.at",
            (digest,),
        ):
            result.exports.append(
                {
                    "export_id": export_id,
                    "call_id": uid,
                    "name": name,
                    "at": at,
                    "actor": actor,
                    "reason": reason,
                }
            )
    ids = sorted(
        {r["call_id"] for r in result.recordings}
        | {e["call_id"] for e in result.exports if e["call_id"]}
    )
    ctx.audit.write(
        "identify",
        actor=ctx.actor,
        at=ctx.now,
        ids=ids,
        file=str(file),
        sha256=digest,
        exports=[e["export_id"] for e in result.exports],
    )
    return result
