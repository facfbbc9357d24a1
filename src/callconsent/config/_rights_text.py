"""The rights a notice names, against its lawful basis (Art 17): under 6(1)(c), (e) or (f) the
right to erasure is not unconditional (Art 17(1)(c), (3)(b)), so a notice that promises it
without a condition ("Du har ret til indsigt og sletning") misleads the caller. Pure: a warning,
since only a person can judge the wording; the shipped texts say "i visse tilfælde" / "in some
cases".
"""

from __future__ import annotations

import re
from typing import Final

from ._errors import Problems
from ._model import CONSENT_BASIS, Notice, NoticeText

ERASURE: Final = re.compile(r"\bsletning|\bslette|\berasure\b|\bdeletion\b|\bdelete", re.I)
CONDITION: Final = re.compile(
    r"\bi visse tilfælde\b|\bi nogle tilfælde\b|\befter omstændighederne\b|\bhvis\b|\bnår\b"
    r"|\bin some cases\b|\bin certain cases\b|\bwhere\b|\bif\b|\bwhen\b",
    re.I,
)


def check_rights_text(notice: Notice, text: NoticeText, path: str, p: Problems) -> None:
    if notice.lawful_basis == CONSENT_BASIS or not text.rights:
        return
    if ERASURE.search(text.rights) and not CONDITION.search(text.rights):
        p.warn(
            f"{path}.rights",
            f"promises erasure without a condition, but under {notice.lawful_basis} the right "
            "to erasure applies only in some cases (Art 17(1)(c), 17(3)); say e.g. 'og, i visse "
            "tilfælde, til sletning' / 'and, in some cases, erasure'",
        )
