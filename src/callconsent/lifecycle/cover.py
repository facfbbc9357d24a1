"""The cover sheet of a subject access export (R27), in Danish and English, from the config.

It says what the package holds and, per purpose found in it: the purpose, lawful basis and
retention as the notices state them, recipients, and the data subject's rights. The config has
no recipients field yet: the sheet then points to the privacy notice (flagged in ``ropa``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callconsent.config import Config

_T = {
    "title": ("Indsigt i optagelser af telefonsamtaler", "Access to recordings of phone calls"),
    "controller": ("Dataansvarlig", "Controller"),
    "dpo": ("Databeskyttelsesrådgiver", "Data protection officer"),
    "contents": (
        "Pakken indeholder {audio} lydoptagelse(r), metadata for hver optagelse og {entries} "
        "registrering(er) i vores log over opkald og samtykker, også opkald der ikke blev "
        "optaget, for {calls} opkald.",
        "This package holds {audio} audio recording(s), the metadata of each recording and "
        "{entries} entry(ies) from our log of calls and consents, including calls that were not "
        "recorded, for {calls} call(s).",
    ),
    "withheld": (
        "{n} optagelse(r) er omfattet af en retlig tilbageholdelse (begrænsning af behandling) "
        "og er ikke vedlagt; kontakt os for at få dem udleveret.",
        "{n} recording(s) are under a legal hold (restriction of processing) and are not "
        "included; contact us to receive them.",
    ),
    "purposes": ("Formål, retsgrundlag og opbevaring", "Purposes, lawful basis and retention"),
    "basis": ("Retsgrundlag", "Lawful basis"),
    "retention": ("Opbevaring", "Retention"),
    "days": ("{n} dage", "{n} days"),
    "recipients": ("Modtagere", "Recipients"),
    "recipients_text": (
        "Optagelserne videregives ikke, medmindre det fremgår af vores fulde oplysninger: {url}",
        "The recordings are not disclosed unless our full privacy notice says so: {url}",
    ),
    "rights": ("Dine rettigheder", "Your rights"),
    "rights_text": (
        "Du har ret til indsigt, berigtigelse, sletning, begrænsning af behandling og til at gøre "
        "indsigelse mod behandling baseret på legitim interesse eller offentlig myndighed. Et "
        "samtykke kan til enhver tid trækkes tilbage. Du kan klage til Datatilsynet "
        "(www.datatilsynet.dk).",
        "You have the right of access, rectification, erasure, restriction of processing and to "
        "object to processing based on legitimate interest or public authority. Consent can be "
        "withdrawn at any time. You can complain to the Danish Data Protection Agency "
        "(Datatilsynet, www.datatilsynet.dk).",
    ),
    "more": ("Læs mere", "More information"),
    "files": ("Filer i pakken (sha256)", "Files in this package (sha256)"),
}


def cover_sheet(
    config: Config,
    *,
    export_id: str,
    created: str,
    purposes: Mapping[str, tuple[str, int]],
    audio: int,
    entries: int,
    calls: int,
    withheld: int,
    files: Sequence[Mapping[str, Any]],
) -> str:
    """Markdown; ``purposes`` maps purpose name to (lawful basis, retention days) as recorded."""
    org = config.organisation
    out = [
        f"# {_T['title'][0]} / {_T['title'][1]}",
        "",
        f"Export id: `{export_id}` · {created}",
        "",
        f"- {_T['controller'][0]} / {_T['controller'][1]}: {org.name}",
    ]
    if org.dpo_contact:
        out.append(f"- {_T['dpo'][0]} / {_T['dpo'][1]}: {org.dpo_contact}")
    for lang, i in (("Dansk", 0), ("English", 1)):
        out += [
            "",
            f"## {lang}",
            "",
            _T["contents"][i].format(audio=audio, entries=entries, calls=calls),
        ]
        if withheld:
            out += ["", _T["withheld"][i].format(n=withheld)]
        out += ["", f"### {_T['purposes'][i]}", ""]
        for name, (basis, days) in sorted(purposes.items()):
            text = _notice_text(config, name, basis, "da" if i == 0 else "en")
            out.append(
                f"- **{name}**: {text.get('purpose', name)}. "
                f"{_T['basis'][i]}: GDPR {basis}"
                f"{' (' + text['basis'] + ')' if 'basis' in text else ''}. "
                f"{_T['retention'][i]}: {_T['days'][i].format(n=days)}"
                f"{' (' + text['retention'] + ')' if 'retention' in text else ''}."
            )
        out += [
            "",
            f"### {_T['recipients'][i]}",
            "",
            _T["recipients_text"][i].format(url=org.privacy_url),
            "",
            f"### {_T['rights'][i]}",
            "",
            _T["rights_text"][i],
            "",
            f"{_T['more'][i]}: {org.privacy_url}",
        ]
    out += ["", f"## {_T['files'][0]} / {_T['files'][1]}", ""]
    out += [f"- `{f['name']}` {f['sha256']}" for f in files]
    return "\n".join(out) + "\n"


def _notice_text(config: Config, purpose: str, basis: str, lang: str) -> dict[str, str]:
    """The first-layer sentences of the notice for ``purpose`` (preferring the same basis)."""
    candidates = sorted(
        config.notices.values(), key=lambda n: (n.purpose != purpose, n.lawful_basis != basis)
    )
    for notice in candidates:
        if notice.purpose != purpose:
            break
        text = notice.languages.get(lang) or notice.languages.get("da")
        if text is not None:
            return {
                "purpose": text.purpose_text,
                "basis": text.basis_text,
                "retention": text.retention_text,
            }
    return {}
