"""The retention a notice speaks, read from its ``retention`` element and checked against the
notice's ``retention_days`` (R5, R25): a notice that says "30 dage" over a 365-day retention
tells the caller something the system does not do.

Pure: text in, days out. Understood: a number (digits, or a word one to twelve in Danish or
English) followed by a unit: days (dag/dage/døgn/day/days), weeks (uge/uger/week/weeks), months
(måned/måneder/month/months) or years (år/year/years). A month counts as 28-31 days and a year
as 365-366, so "3 måneder" fits 84..93 days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._errors import Problems
from ._model import Notice, NoticeText

_WORDS: Final = {
    **dict.fromkeys(("en", "et", "one", "a", "an"), 1),
    **dict.fromkeys(("to", "two"), 2),
    **dict.fromkeys(("tre", "three"), 3),
    **dict.fromkeys(("fire", "four"), 4),
    **dict.fromkeys(("fem", "five"), 5),
    **dict.fromkeys(("seks", "six"), 6),
    **dict.fromkeys(("syv", "seven"), 7),
    **dict.fromkeys(("otte", "eight"), 8),
    **dict.fromkeys(("ni", "nine"), 9),
    **dict.fromkeys(("ti", "ten"), 10),
    **dict.fromkeys(("elleve", "eleven"), 11),
    **dict.fromkeys(("tolv", "twelve"), 12),
}
#: unit -> (least, most) days in one of it
_UNITS: Final = {
    "day": (1, 1),
    "week": (7, 7),
    "month": (28, 31),
    "year": (365, 366),
}
_UNIT_WORDS: Final = {
    "dag": "day",
    "dage": "day",
    "døgn": "day",
    "day": "day",
    "days": "day",
    "uge": "week",
    "uger": "week",
    "week": "week",
    "weeks": "week",
    "måned": "month",
    "måneder": "month",
    "month": "month",
    "months": "month",
    "år": "year",
    "year": "year",
    "years": "year",
}
_PERIOD: Final = re.compile(
    r"(?<!\w)(\d{1,5}|"
    + "|".join(sorted(_WORDS, key=len, reverse=True))
    + r")\s+("
    + "|".join(sorted(_UNIT_WORDS, key=len, reverse=True))
    + r")(?!\w)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class StatedPeriod:
    """A period said in a notice: the words, and the days they can mean."""

    words: str
    least_days: int
    most_days: int

    def fits(self, days: int) -> bool:
        return self.least_days <= days <= self.most_days


def stated_periods(text: str) -> list[StatedPeriod]:
    """Every period said in ``text``, in order ("3 måneder" -> 84..93 days)."""
    found = []
    for match in _PERIOD.finditer(text):
        amount, unit = match.group(1).casefold(), _UNIT_WORDS[match.group(2).casefold()]
        n = int(amount) if amount.isdigit() else _WORDS[amount]
        least, most = _UNITS[unit]
        found.append(StatedPeriod(match.group(0), n * least, n * most))
    return found


def check_retention_text(notice: Notice, text: NoticeText, path: str, p: Problems) -> None:
    """Error when the spoken retention is not ``notice.retention_days``; a warning when it
    states no period the check understands (then a person must compare them)."""
    spoken = text.retention_text
    if not spoken or notice.retention_days <= 0:
        return
    periods = stated_periods(spoken)
    if not periods:
        p.warn(
            f"{path}.retention",
            f"states no period check-config understands (e.g. '30 dage', '3 måneder'); make "
            f"sure it agrees with retention_days: {notice.retention_days}",
        )
        return
    if not any(period.fits(notice.retention_days) for period in periods):
        said = ", ".join(repr(period.words) for period in periods)
        p.error(
            f"{path}.retention",
            f"says {said} but retention_days is {notice.retention_days}: the notice must state "
            "the retention the system applies (R5, R25)",
        )
