"""The variables a call's result gives the dialplan hook besides STATUS, REASON and RECORDING:
the agent bridge's, the objection and withdrawal codes', the caller's confirmation. Pure, and
the same for the Stasis and the FastAGI flow."""

from __future__ import annotations

from callconsent import names
from callconsent.agents.rules import bridge_variables
from callconsent.confirmation import confirmation_variables
from callconsent.consent import CallOutcome, CallPlan
from callconsent.ports import Objections
from callconsent.withdrawal.in_call import withdraw_variables
from callconsent.withdrawal.route import Readout


def extra_variables(
    plan: CallPlan,
    outcome: CallOutcome | None,
    recording: str,
    uniqueid: str,
    *,
    whisper_dir: str,
    prompts_dir: str,
    refs: Readout | None,
    objections: Objections | None,
) -> list[tuple[str, str]]:
    """Everything set before the result's own three variables, in the order the hook reads
    them; ``recording`` is the path when this call records, else ""."""
    recorded = outcome.recorded_purposes if recording and outcome else ()
    out = bridge_variables(recorded, uniqueid, whisper_dir)
    if recorded and outcome:
        if objections:  # before the withdrawal's last variable
            out += objections.variables(outcome.route, recorded)
        out += withdraw_variables(outcome, prompts_dir, uniqueid, refs)
    return out + confirmation_variables(plan, outcome)  # texts 6, 7


def replacing(earlier: list[str] | None, extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``extra`` for a result that replaces one set before on the same call (``earlier``: the
    names of that one's extra variables; None: no result was set before). The recording path is
    cleared first (the hook records only when it is set: a failure part-way over AGI records
    nothing), then every variable the earlier result set that this one does not, then ``extra``."""
    if earlier is None:
        return extra
    kept = {name for name, _ in extra}
    cleared = [(name, "") for name in dict.fromkeys(earlier) if name not in kept]
    return [(names.VAR_RECORDING, ""), *cleared, *extra]
