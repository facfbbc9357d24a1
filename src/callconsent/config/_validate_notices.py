"""The notice rules: first-layer elements said in the transcript, consent wording only in
consent notices, objection as its own sentence (R5, R6, R14, R22; Art 7(3), 13, 21(4))."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from ._errors import Problems
from ._model import CONSENT_BASIS, FALLBACK_LANGUAGE, Config, Notice, NoticeText
from ._retention_text import check_retention_text
from ._rights_text import check_rights_text

OBJECTABLE_BASES: Final = ("6(1)(e)", "6(1)(f)")

#: Words that present something as a choice to agree: never in a non-consent notice (R5, R14).
CONSENT_WORDING: Final = re.compile(
    r"\bsamtykke|\bconsent|\bsig(?:er)? ja\b|\bsay yes\b|\bfor ja\b|\bfor yes\b|\bhvis du accepterer\b"
    r"|\bif you agree\b|\bdo you agree\b|\bhvis du vil\b|\bif you want\b",
    re.IGNORECASE,
)
#: A keypress instruction. In a non-consent notice it may only appear in the objection sentence.
KEYPRESS: Final = re.compile(
    r"\b(?:tryk(?:ke|ker)?|press(?:ing)?|dial)\s+(?:på\s+)?(?:\d|stjerne|firkant|star|hash|pound)\b",
    re.IGNORECASE,
)
#: The explicit-consent variant must name health data and say "explicitly" (R22, text 4).
EXPLICIT_WORDING: Final = {
    "da": (re.compile(r"helbred", re.I), re.compile(r"udtrykkeligt", re.I)),
    "en": (re.compile(r"health", re.I), re.compile(r"explicit", re.I)),
}


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


# -- notices -----------------------------------------------------------------------------


def check_notice(config: Config, name: str, notice: Notice, p: Problems) -> None:
    path = f"notices.{name}"
    if notice.retention_days <= 0 and not p.failed(f"{path}.retention_days"):
        p.error(f"{path}.retention_days", f"must be > 0, got {notice.retention_days}")
    if FALLBACK_LANGUAGE not in notice.languages and not p.failed(f"{path}.languages"):
        p.error(f"{path}.languages.da", "missing: Danish is every notice's fallback language (R6)")
    if p.failed(f"{path}.lawful_basis"):
        return
    for lang, text in notice.languages.items():
        _check_notice_text(config, notice, text, f"{path}.languages.{lang}", p)


def _contains(transcript: str, phrase: str) -> bool:
    return norm(phrase) in norm(transcript)


def _check_notice_text(
    config: Config, notice: Notice, text: NoticeText, path: str, p: Problems
) -> None:
    transcript = text.prompt.transcript
    consent = notice.lawful_basis == CONSENT_BASIS
    elements = {
        "controller": text.controller,
        "purpose": text.purpose_text,
        "basis": text.basis_text,
        "retention": text.retention_text,
        "rights": text.rights,
        "withdrawal": text.withdrawal,
        "objection": text.objection,
    }
    for key, value in elements.items():
        if value and transcript and not _contains(transcript, value):
            p.error(f"{path}.{key}", "not found in the transcript: the notice must say it (R5)")
    org = config.organisation.name
    if text.controller and org and not _contains(text.controller, org):
        p.error(f"{path}.controller", f"must name the controller {org!r} (Art 13(1)(a))")
    _check_info_url(text, path, p)
    check_retention_text(notice, text, path, p)  # the spoken retention is retention_days
    check_rights_text(notice, text, path, p)  # no unconditional erasure under 6(1)(c)/(e)/(f)
    if consent:
        if not text.withdrawal:
            p.error(
                f"{path}.withdrawal",
                "missing: a consent notice must say how to withdraw (Art 7(3))",
            )
        for key in ("question", "retry"):
            if getattr(text, key) is None:
                p.error(f"{path}.{key}", f"missing: a consent purpose needs its {key} prompt (R11)")
    else:
        for key in ("withdrawal", "question", "explicit_question", "retry"):
            if getattr(text, key) is not None:
                p.error(
                    f"{path}.{key}",
                    f"a notice under {notice.lawful_basis} asks no consent; remove {key} (R14)",
                )
        _check_not_consent_wording(text, path, p)
    if notice.lawful_basis in OBJECTABLE_BASES:
        if not text.objection:
            p.error(
                f"{path}.objection",
                f"missing: {notice.lawful_basis} needs the right to object as its own sentence "
                "(Art 21(4))",
            )
        elif transcript and not _own_sentence(transcript, text.objection):
            p.error(
                f"{path}.objection", "must be a sentence of its own in the transcript (Art 21(4))"
            )
    elif text.objection and not consent:
        p.error(
            f"{path}.objection",
            f"{notice.lawful_basis} gives no right to object (Art 21(1)); remove the sentence",
        )
    if text.explicit_question is not None and text.language in EXPLICIT_WORDING:
        for pattern in EXPLICIT_WORDING[text.language]:
            if not pattern.search(text.explicit_question.transcript):
                p.error(
                    f"{path}.explicit_question.transcript",
                    f"the explicit-consent wording must contain {pattern.pattern!r} (R22)",
                )


def _check_info_url(text: NoticeText, path: str, p: Problems) -> None:
    url = text.info_url
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        p.error(f"{path}.info_url", f"must be an http(s) URL to the full Art 13 text, got {url!r}")
        return
    spoken = (parts.netloc + parts.path).rstrip("/")
    if text.prompt.transcript and not _contains(text.prompt.transcript, spoken):
        p.error(f"{path}.info_url", f"the transcript must point to it (say {spoken!r}) (R5)")


def _check_not_consent_wording(text: NoticeText, path: str, p: Problems) -> None:
    transcript = norm(text.prompt.transcript)
    if text.objection:
        transcript = transcript.replace(norm(text.objection), " ")
    found = CONSENT_WORDING.search(transcript) or KEYPRESS.search(transcript)
    if found:
        p.error(
            f"{path}.transcript",
            f"describes a non-consent basis as consent ({found.group(0)!r}); only a consent "
            "purpose asks for a keypress (R5, R14)",
        )


def _own_sentence(transcript: str, sentence: str) -> bool:
    haystack, needle = norm(transcript), norm(sentence).rstrip(".!?")
    start = haystack.find(needle)
    if start < 0:
        return False
    before = haystack[:start].rstrip()
    after = haystack[start + len(needle) :].lstrip()
    return (not before or before[-1] in ".!?") and (not after or after[0] in ".!?")
