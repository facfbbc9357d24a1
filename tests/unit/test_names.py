"""The names in callconsent.names are spelled exactly as the dialplan hook spells them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from callconsent import names
from tests.support.hook import HOOK, cleared_before, hook_code, hook_lines, mset_entries

REPO = Path(__file__).resolve().parents[2]

SHARED = sorted(
    (name, value)
    for name, value in vars(names).items()
    if name in ("APP_NAME", "HOOK_CONTEXT", "HOOK_EXTEN") or name.startswith("VAR_")
)


def test_every_shared_name_is_listed() -> None:
    assert {name for name, _ in SHARED} >= {
        "APP_NAME",
        "HOOK_CONTEXT",
        "VAR_STATUS",
        "VAR_REASON",
        "VAR_RECORDING",
        "VAR_MIXMONITOR_ID",
    }


@pytest.mark.parametrize(("name", "value"), SHARED, ids=[n for n, _ in SHARED])
def test_shared_name_appears_verbatim_in_the_hook(name: str, value: str) -> None:
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])", hook_code()), (
        f"{name} = {value!r} is not in {HOOK.name}"
    )


def test_hook_context_is_the_one_admins_gosub_into() -> None:
    contexts = re.findall(r"^\[([^\]]+)\]", hook_code(), flags=re.MULTILINE)
    assert contexts == [
        names.HOOK_CONTEXT,
        names.AGI_CONTEXT,
        names.AGI_ENDED_CONTEXT,
        names.UNAVAILABLE_MARK_CONTEXT,
        names.AGENT_CONTEXT,
        names.WITHDRAW_CONTEXT,
        names.WITHDRAW_MARK_CONTEXT,
        names.SENSITIVE_CONTEXT,
        names.WITHDRAW_AGENT_CONTEXT,
        names.WITHDRAW_ROUTE_CONTEXT,
        names.WITHDRAW_REQUEST_MARK_CONTEXT,
        names.CDR_CONTEXT,
        names.OBJECTION_CONTEXT,
        names.OBJECTION_AGENT_CONTEXT,
        names.AGENT_SELF_CONTEXT,
    ]
    assert re.search(rf"^exten => {re.escape(names.HOOK_EXTEN)},1,", hook_code(), re.MULTILINE)


def test_sensitive_flag_names_are_in_the_dialplan_and_features_conf() -> None:
    code = hook_code()
    for value in (names.SENSITIVE_FEATURE, names.SENSITIVE_USER_EVENT):
        assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])", code), value
    features = (REPO / "config" / "asterisk" / "features.conf").read_text(encoding="utf-8")
    assert re.search(
        rf"^{names.SENSITIVE_FEATURE} => \*7,self,Gosub\({names.SENSITIVE_CONTEXT},s,1\)$",
        features,
        re.MULTILINE,
    )


def test_agi_hook_calls_the_scripts_the_server_answers() -> None:
    code = hook_code()
    assert f"/{names.AGI_FLOW_SCRIPT}?route=${{FILTER(a-zA-Z0-9_\\-,${{ARG1}})}})" in code
    assert f"/{names.AGI_ENDED_SCRIPT})" in code
    assert f"hangup_handler_push)={names.AGI_ENDED_CONTEXT},s,1" in code


def test_objection_names_are_in_the_dialplan_and_features_conf() -> None:
    code = hook_code()
    for value in (names.OBJECTION_FEATURE, names.OBJECTION_AGENT_FEATURE):
        assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])", code), value
    assert f"UserEvent({names.OBJECTION_USER_EVENT}," in code
    features = (REPO / "config" / "asterisk" / "features.conf").read_text(encoding="utf-8")
    for feature, key, context in (
        (names.OBJECTION_FEATURE, "3", names.OBJECTION_CONTEXT),
        (names.OBJECTION_AGENT_FEATURE, "6", names.OBJECTION_AGENT_CONTEXT),
    ):
        line = rf"^{feature} => \*{key},self,Gosub\({context},s,1\)$"
        assert re.search(line, features, re.MULTILINE), feature


def test_hook_enters_the_stasis_app_by_its_name() -> None:
    (app,) = re.findall(r"Stasis\(([^,)]+)", hook_code())
    assert app == names.APP_NAME


#: What the app sets on the way out (and the hooks clear before asking it: stale values never
#: count); ``__``: inherited by the agent's channel.
_CLEARED_BY_BOTH_HOOKS = {
    names.VAR_STATUS,
    names.VAR_REASON,
    names.VAR_RECORDING,
    names.VAR_RECORD_AT,
    names.VAR_CALLREF,
    names.VAR_WITHDRAWABLE,
    names.VAR_WITHDRAW_KEEPS,
    names.VAR_WITHDRAW_PROMPT,
    names.VAR_WITHDRAWN,
    *(
        f"__{v}"
        for v in (
            names.VAR_CALLER,
            names.VAR_PURPOSES,
            names.VAR_AGENT_PURPOSES,
            names.VAR_AGENT_WAIT,
        )
    ),
    f"__{names.VAR_WHISPER_DIR}",
}


def test_hook_clears_each_result_variable_before_stasis_and_records_to_the_path() -> None:
    cleared = cleared_before(names.HOOK_CONTEXT, "Stasis(")
    extra = {names.VAR_CONFIRM_PROMPT, f"__{names.VAR_OBJECTABLE}"}
    assert cleared >= _CLEARED_BY_BOTH_HOOKS | extra
    assert f"MixMonitor(${{{names.VAR_RECORDING}}},bi({names.VAR_MIXMONITOR_ID}))" in hook_code()


def test_agi_hook_clears_each_result_variable_before_the_agi() -> None:
    assert cleared_before(names.AGI_CONTEXT, "AGI(") >= _CLEARED_BY_BOTH_HOOKS


def test_the_agent_gosub_clears_its_result_before_the_user_event() -> None:
    assert names.VAR_AGENT_RESULT in cleared_before(names.AGENT_CONTEXT, "UserEvent(")


def test_every_mset_holds_only_constants_and_filtered_values() -> None:
    """MSet splits at "," after substitution: a value that could hold a comma (caller text)
    would set variables of the caller's choosing."""
    filtered = re.compile(r"\$\{FILTER\(([^,]*),\$\{[A-Z_]+\}\)\}")
    msets = [line for line in hook_lines() if "MSet(" in line]
    assert msets
    for line in msets:
        for name, value in mset_entries(line):
            assert re.fullmatch(r"(?:__)?[A-Z_]+|LOCAL\([a-z]+\)", name), line
            spec = filtered.fullmatch(value)
            assert (
                re.fullmatch(r"[A-Za-z0-9_]*", value)
                or value == "${LOCAL(agent)}"
                or (spec is not None and "," not in spec.group(1) and "=" not in spec.group(1))
            ), (line, value)


def test_hook_uses_the_unavailable_status_value() -> None:
    assert f"Set({names.VAR_STATUS}={names.Status.UNAVAILABLE})" in hook_code()


def test_hook_records_only_after_the_status_is_checked() -> None:
    lines = hook_lines()
    mixmonitor = next(i for i, line in enumerate(lines) if "MixMonitor(" in line)
    stasis = next(i for i, line in enumerate(lines) if "Stasis(" in line)
    status_check = next(
        i for i, line in enumerate(lines) if "GotoIf" in line and names.VAR_STATUS in line
    )
    assert stasis < status_check < mixmonitor


@pytest.mark.parametrize("config", ["callconsent.yaml", "demo.yaml"])
def test_shipped_configs_name_the_same_ari_app(config: str) -> None:
    data = yaml.safe_load((REPO / "config" / config).read_text(encoding="utf-8"))
    assert data["asterisk"]["ari"]["app"] == names.APP_NAME


def test_the_hook_writes_the_outcome_into_the_cdr_on_both_ways_out() -> None:
    code = hook_code()
    for field in (names.CDR_STATUS, names.CDR_REASON, names.CDR_RECORDING, names.CDR_RECORDINGFILE):
        assert f"Set(CDR({field})=" in code, field
    hook = code.split(f"[{names.HOOK_CONTEXT}]", 1)[1].split("\n[", 1)[0]
    returns = [line for line in hook.splitlines() if "Return()" in line]
    gosubs = [line for line in hook.splitlines() if f"Gosub({names.CDR_CONTEXT},s,1)" in line]
    assert len(returns) == 2 and len(gosubs) == 2, "every way out of the hook writes the CDR"


def test_agent_self_names_and_prompts_are_the_dialplan_s() -> None:
    code = hook_code()
    assert f"UserEvent({names.AGENT_SELF_USER_EVENT},Consent: " in code
    for prompt in names.AGENT_SELF_PROMPTS.values():
        assert f"Playback(${{LOCAL(dir)}}/{prompt})" in code, prompt


def test_agent_self_raises_the_late_event_only_when_it_read_no_answer() -> None:
    code = hook_code()
    context = code.split(f"[{names.AGENT_SELF_CONTEXT}]", 1)[1].split("\n[", 1)[0]
    lines = context.splitlines()
    [at] = [i for i, line in enumerate(lines) if names.AGENT_SELF_LATE_USER_EVENT in line]
    assert (
        f"UserEvent({names.AGENT_SELF_LATE_USER_EVENT},Consent: ${{LOCAL(consent)}})" in (lines[at])
    )
    assert lines[at - 1].endswith('GotoIf($["${LOCAL(result)}" != ""]?failed)')
    assert lines[at + 1].startswith(" same => n(failed),Playback(")
    reading = next(i for i, line in enumerate(lines) if "Set(LOCAL(result)=" in line)
    assert reading < at and "WaitForCondition(" in lines[reading - 1]


def test_withdraw_route_raises_the_late_event_only_when_it_read_no_answer() -> None:
    code = hook_code()
    context = code.split(f"[{names.WITHDRAW_ROUTE_CONTEXT}]", 1)[1].split("\n[", 1)[0]
    lines = context.splitlines()
    [at] = [i for i, line in enumerate(lines) if names.WITHDRAW_REQUEST_LATE_USER_EVENT in line]
    assert lines[at].endswith(
        f"UserEvent({names.WITHDRAW_REQUEST_LATE_USER_EVENT},Request: ${{LOCAL(id)}})"
    )
    assert lines[at - 1].endswith('GotoIf($["${LOCAL(result)}" != ""]?registered)')
    registered = names.WITHDRAW_ROUTE_PROMPTS["registered"]
    assert lines[at + 1] == (f" same => n(registered),Playback(${{LOCAL(dir)}}/{registered})")
    reading = next(i for i, line in enumerate(lines) if "Set(LOCAL(result)=" in line)
    assert reading < at and "WaitForCondition(" in lines[reading - 1]
    assert all("CALLCONSENT_WITHDRAW_RESULT" not in line for line in lines[reading + 1 :])
