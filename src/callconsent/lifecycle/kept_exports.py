"""Subject-access archives the system keeps (``<ledger dir>/exports``, the default ``--out``).

An archive holds what was handed out: audio, sidecars and the callers' numbers and names in
clear. When a subject's calls are erased, :func:`drop_kept` deletes every archive in that folder
which holds any of those calls (the index's ``export_files`` rows, or the calls its ``export``
entry names: a refusal has no audio but its caller is in the archive) and is still the file the
ledger's ``export`` entry logged (same sha256): nothing else, and nothing elsewhere (an archive
written to another ``--out`` is the operator's to delete).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Final

from callconsent.evidence.fsio import fsync_dir
from callconsent.lifecycle._context import Context
from callconsent.lifecycle.errors import storage_error

FOLDER: Final = "exports"
_EXPORT_ID: Final = re.compile(r"[0-9a-f]{32}")
_CHUNK: Final = 400  # twice that many parameters per query, under SQLite's oldest limit (999)


def default_folder(ledger_path: Path) -> Path:
    return ledger_path.parent / FOLDER


def archive_name(export_id: str) -> str:
    return f"callconsent-export-{export_id}.zip"


def drop_kept(ctx: Context, call_ids: list[str], *, dry_run: bool = False) -> list[str]:
    """Delete the kept archives holding any of ``call_ids``; their file names."""
    folder = default_folder(ctx.ledger_path)
    ids = sorted(set(call_ids))
    exports: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(part))
        rows = ctx.index.db.execute(  # by the audio it holds, or by the calls its entry names
            f"SELECT export_id FROM export_files WHERE uniqueid IN ({marks}) "  # noqa: S608
            "UNION SELECT e.export_id FROM exports e JOIN entry_calls c ON c.seq = e.seq "
            f"WHERE c.uniqueid IN ({marks})",
            part + part,
        ).fetchall()
        exports.update(str(r[0]) for r in rows)
    gone: list[str] = []
    for export_id in sorted(e for e in exports if _EXPORT_ID.fullmatch(e)):
        name = archive_name(export_id)
        row = ctx.index.db.execute(
            "SELECT sha256 FROM export_files WHERE export_id=? AND name=?", (export_id, name)
        ).fetchone()
        path = folder / name
        if row is None or path.is_symlink() or not path.is_file():
            continue
        try:
            if hashlib.sha256(path.read_bytes()).hexdigest() != row[0]:
                continue
            if not dry_run:
                path.unlink()
        except OSError as exc:
            raise storage_error("delete a kept export", path, exc) from exc
        gone.append(name)
    if gone and not dry_run:
        fsync_dir(folder)
    return gone
