"""The notice archive against the config (R20): a notice version keeps its purpose, lawful basis
and retention for ever, and ``serve`` archives every version it plays.

``archive_conflicts`` reads each archived version's ``.json`` (written by
:func:`callconsent.prompts.archive_notices`) and reports a config notice that has the same name
and ``version`` as an archived one but another purpose, basis or retention: such a change needs
a new notice (new name and version), never an edit, or callers who heard the old text would be
held to the new one. ``check-config`` and ``serve`` refuse such a config.

:class:`NoticeArchiver` is what ``serve`` uses: the versions it finds at start-up are archived
then, and a version first seen in a call plan (a prompt replaced while serve runs) is archived
before the call's evidence names it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from callconsent.config import Config
from callconsent.consent import CallPlan
from callconsent.prompts import archive_notices

log = structlog.get_logger(__name__)

#: The fields a notice version may never change (R20), as in the archive's ``.json``.
FIXED: Final = ("purpose", "lawful_basis", "retention_days")


@dataclass(frozen=True, slots=True)
class ArchivedVersion:
    """What the archive says one version of a notice was for."""

    notice: str
    version: str
    sha256: str
    language: str
    fields: Mapping[str, Any]


def read_archive(archive_dir: Path) -> list[ArchivedVersion]:
    """Every readable ``<sha256>.json`` in ``archive_dir`` (none when it does not exist).
    A file that is not such a record is skipped and logged; OSError on the folder is raised."""
    if not archive_dir.is_dir():
        return []
    found = []
    for path in sorted(archive_dir.glob("*.json")):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            found.append(
                ArchivedVersion(
                    str(meta["notice"]),
                    str(meta["notice_version"]),
                    str(meta["sha256"]),
                    str(meta.get("language", "")),
                    {key: meta[key] for key in FIXED},
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("notice_archive_unreadable", path=str(path), error=str(exc))
    return found


def version_conflicts(config: Config, archived: Iterable[ArchivedVersion]) -> list[str]:
    """One error per config notice whose name and version are archived with another purpose,
    basis or retention (pure)."""
    errors: dict[tuple[str, str], str] = {}
    for old in archived:
        notice = config.notices.get(old.notice)
        if notice is None or notice.version != old.version:
            continue
        now = {
            "purpose": notice.purpose,
            "lawful_basis": notice.lawful_basis,
            "retention_days": notice.retention_days,
        }
        changed = [
            f"{key} {old.fields[key]!r} -> {now[key]!r}"
            for key in FIXED
            if old.fields[key] != now[key]
        ]
        summary = ", ".join(changed)
        if changed and (old.notice, summary) not in errors:
            errors[(old.notice, summary)] = (
                f"notices.{old.notice}: version {old.version!r} was archived (sha256 "
                f"{old.sha256[:12]}..., {old.language}) and played with other terms: "
                f"{summary}. A change of purpose, lawful basis or retention needs a new notice "
                "(new name and version, with its own text), never an edit (R20)"
            )
    return list(errors.values())


def archive_conflicts(config: Config) -> list[str]:
    """:func:`version_conflicts` against ``config``'s archive, each prefixed with the config
    file as config errors are; an archive folder that cannot be read is an error too."""
    try:
        archived = read_archive(config.storage.notice_archive_dir)
    except OSError as exc:
        return [
            f"{config.path}: storage.notice_archive_dir: cannot read "
            f"{config.storage.notice_archive_dir}: {exc.strerror or exc}"
        ]
    return [f"{config.path}: {error}" for error in version_conflicts(config, archived)]


def plan_versions(plan: CallPlan) -> set[str]:
    """The sha256 of every notice prompt a call plan may play (its menu's other languages too)."""
    versions = {prompt.version for prompt in plan.notices}
    for purpose in plan.purposes:
        if purpose.consent is not None:
            versions |= {purpose.consent.question.version, purpose.consent.retry.version}
    if plan.menu is not None:
        for _, other in plan.menu.options:
            versions |= plan_versions(other)
    versions.discard("")
    return versions


class NoticeArchiver:
    """``serve``'s archiving: every version it plays is in the archive (R20)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._known: set[str] = set()

    def archive_all(self) -> bool:
        """Archive the current version of every notice prompt; False (logged) when it failed."""
        try:
            archive_notices(self._config)
        except OSError as exc:
            log.error(
                "notice_archive_failed",
                folder=str(self._config.storage.notice_archive_dir),
                error=str(exc),
            )
            return False
        archive = self._config.storage.notice_archive_dir
        self._known |= {path.stem for path in archive.glob("*.json")}
        return True

    def ensure(self, versions: Iterable[str]) -> None:
        """Archive again when a call plays a version (sha256) not yet archived."""
        if any(v and v not in self._known for v in versions):
            self.archive_all()
