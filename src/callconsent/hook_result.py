"""The variables a call's result gives the dialplan hook besides STATUS, REASON and RECORDING:
the agent bridge's, the objection and withdrawal codes', the caller's confirmation. Pure, and
the same for the Stasis and the FastAGI flow."""

from __future__ import annotations

from dataclasses import dataclass

from callconsent import names
from callconsent.agents.rules import bridge_variables
from callconsent.confirmation import confirmation_variables
from callconsent.consent import CallOutcome, CallPlan
from callconsent.ports import Objections
from callconsent.withdrawal.in_call import withdraw_variables
from callconsent.withdrawal.route import Readout


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


@dataclass(slots=True)
class ResultVariables:
    """What an adapter (Stasis or FastAGI) needs to give a call's result its extra variables;
    ``refs`` changes when the call-reference key is reloaded."""

    whisper_dir: str  # <prompts_dir>/<lang>: the agent gosub's whisper prompts
    prompts_dir: str  # the caller's withdrawal confirmation (R16)
    refs: Readout | None  # R17b: the call reference read to the caller
    objections: Objections | None  # R30: objection after the flow
    agent_wait: float = names.AGENT_WAIT_SECONDS  # the agent gosub's wait for the app's answer

    def variables(
        self, plan: CallPlan, outcome: CallOutcome | None, recording: str, uniqueid: str
    ) -> list[tuple[str, str]]:
        """Everything set before the result's own three variables, in the order the hook reads
        them; ``recording`` is the path when this call records, else ""."""
        recorded = outcome.recorded_purposes if recording and outcome else ()
        out = bridge_variables(recorded, uniqueid, self.whisper_dir, agent_wait=self.agent_wait)
        if recorded and outcome:
            if self.objections:  # before the withdrawal's last variable
                out += self.objections.variables(outcome.route, recorded)
            out += withdraw_variables(outcome, self.prompts_dir, uniqueid, self.refs)
        return out + confirmation_variables(plan, outcome)  # texts 6, 7

    def next(
        self,
        plan: CallPlan,
        outcome: CallOutcome | None,
        recording: str,
        uniqueid: str,
        earlier: list[str] | None,
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """The names of this result's extra variables (``earlier`` for the next one), and the
        variables to set, undoing what the ``earlier`` result set (:func:`replacing`)."""
        extra = self.variables(plan, outcome, recording, uniqueid)
        return [n for n, _ in extra], replacing(earlier, extra)
