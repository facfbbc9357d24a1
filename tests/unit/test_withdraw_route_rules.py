"""The withdrawal route's rules (R17a, b): requests, answers, the call reference read to a
caller who consented, its config key, prompts, and the dialplan that uses them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import structlog

from callconsent import names
from callconsent.app import ConfigPlanner, build_readout
from callconsent.config import ConfigError
from callconsent.evidence import callref
from callconsent.evidence.fsio import parse_stamp
from callconsent.lifecycle.withdraw import Item, WithdrawReport
from callconsent.stasis import StasisApp
from callconsent.withdrawal import in_call
from callconsent.withdrawal import route as withdraw_route
from callconsent.withdrawal.route import (
    Readout,
    Request,
    from_event,
    from_marker,
    seal,
    unseal,
)
from callconsent.withdrawal.route_adapter import scope_of
from tests.support.bridge import outcome
from tests.support.hook import hook_code
from tests.support.stasis_fakes import Harness, load_demo

UID = "1767960000.42"
KEY = b"k" * 32
SEAL = "Sea1KeyForTests0"


# -- requests --------------------------------------------------------------------------------


def test_event_and_marker_give_the_same_request() -> None:
    ev = from_event(
        {
            "request": f"{UID}-0",
            "CALLER": UID,
            "By": "number",
            "Channel": "PJSIP/lab-caller-0000000d",  # Asterisk's own header
            "Value": seal(SEAL, "+4512345678"),
            "At": "2026-01-15T10:00:00.000Z",
        },
        SEAL,
    )
    mk = from_marker(
        f"/callconsent/withdrawreq/{UID}-0",
        f"2026-01-15T10:00:00.000Z number {seal(SEAL, '+4512345678')}",
        SEAL,
    )
    assert ev == Request(
        f"{UID}-0", "number", "+4512345678", parse_stamp("2026-01-15T10:00:00.000Z"), UID
    )
    assert (
        mk is not None
        and mk.channel == ""
        and (mk.request_id, mk.by, mk.value, mk.at) == (ev.request_id, ev.by, ev.value, ev.at)
    )


def test_request_with_a_malformed_time_is_kept_without_one() -> None:
    req = from_marker(
        f"/callconsent/withdrawreq/{UID}-1", f"yesterday call_ref {seal(SEAL, '1' * 9)}", SEAL
    )
    assert req is not None and req.at is None and scope_of(req).call_ref == "1" * 9


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2026-01-15T10:00:00.000Z number",
        "a number +4512345678 extra",
        "2026-01-15T10:00:00.000Z call_id 5000.2",
        "2026-01-15T10:00:00.000Z call_ref 12345678",  # in clear (earlier route), not 9 digits
        f"2026-01-15T10:00:00.000Z number {seal(SEAL, '45 12')}",
        f"2026-01-15T10:00:00.000Z call_ref {seal(SEAL, '12345678')}",
    ],
)
def test_marker_that_is_not_a_request_is_refused(value: str) -> None:
    assert from_marker(f"/callconsent/withdrawreq/{UID}-0", value, SEAL) is None


def test_a_marker_the_route_wrote_in_clear_before_an_upgrade_is_still_carried_out() -> None:
    req = from_marker(
        f"/callconsent/withdrawreq/{UID}-0", "2026-01-15T10:00:00.000Z number +4512345678", SEAL
    )
    assert req is not None and (req.by, req.value) == ("number", "+4512345678")


def test_an_event_with_the_value_in_clear_is_refused() -> None:
    headers = {"Request": f"{UID}-0", "Caller": UID, "By": "number", "Value": "+4512345678"}
    assert from_event({**headers, "At": "2026-01-15T10:00:00.000Z"}, SEAL) is None


@pytest.mark.parametrize("value", ["+4512345678", "4512", "+" + "9" * 32, "123456789"])
def test_a_sealed_value_opens_only_with_its_key(value: str) -> None:
    sealed = seal(SEAL, value)
    assert value not in sealed and unseal(SEAL, sealed) == value
    assert unseal("Other0Key0000000", sealed) != value
    assert unseal("", sealed) is None and unseal(SEAL, "%%%") is None


def test_the_shipped_route_seals_the_value_as_this_module_opens_it() -> None:
    """The dialplan writes only the sealed value to the marker and the event."""
    code = hook_code()
    assert "AES_ENCRYPT(${FILTER(A-Za-z0-9,${CALLCONSENT_SEAL_KEY})},${LOCAL(value)})" in code
    for line in code.splitlines():
        if (
            "withdrawreq" in line
            or "CallconsentWithdrawRequest," in line
            or "WITHDRAW_REQUEST=" in line
        ):
            assert "LOCAL(value)" not in line and "LOCAL(number)" not in line, line


def test_request_scope_and_audit_reason_never_hold_the_number() -> None:
    req = Request(f"{UID}-0", "number", "+4512345678", None, UID)
    assert scope_of(req).number == "+4512345678" and scope_of(req).via == "number"
    assert "+4512345678" not in req.reason("route")


def test_answer_is_done_only_when_everything_in_scope_was_withdrawn() -> None:
    def report(*actions: str, ambiguous: bool = False) -> WithdrawReport:
        r = WithdrawReport(False, "now", {"by": "number"})
        r.items = [Item(f"{i}.1", "f.wav", a) for i, a in enumerate(actions)]
        r.ambiguous = [{"call_id": "1.1", "started_at": "x"}] if ambiguous else []
        return r

    assert withdraw_route.answer(report()) == "done"  # nothing to withdraw: nothing kept
    assert withdraw_route.answer(report("deleted", "not_consent_based")) == "done"
    assert withdraw_route.answer(report("documentation_kept")) == "done"
    assert withdraw_route.answer(report("deleted", "held")) == "pending"
    assert withdraw_route.answer(report("skipped")) == "pending"
    assert withdraw_route.answer(report(ambiguous=True)) == "ambiguous"


def test_reference_with_a_wrong_check_digit_is_a_bad_ref() -> None:
    ref = callref.call_ref(UID)
    assert withdraw_route.ref_problem(ref) is None
    assert withdraw_route.ref_problem(ref[:-1] + str((int(ref[-1]) + 1) % 10)) == "bad_ref"


# -- the call reference read to a caller who consented (R17b) ----------------------------------


def test_readout_gives_the_reference_when_to_read_it_and_the_prompt() -> None:
    readout = Readout({"support": "withheld"}, KEY)
    assert readout.variables("support", UID, "en", "/p") == [
        (names.VAR_CALLREF_PROMPT, "/p/en/callconsent-callref"),
        (names.VAR_CALLREF_READ, "withheld"),
        (names.VAR_CALLREF, callref.call_ref(UID, KEY)),
    ]
    assert dict(readout.variables("support", UID, "sv", "/p"))[names.VAR_CALLREF_PROMPT] == (
        "/p/da/callconsent-callref"
    )
    assert readout.variables("docs", UID, "da", "/p") == []
    assert readout.variables("support", UID, "da", "") == []  # no prompts: nothing to say
    assert "k" * 32 not in repr(readout)


def test_reference_is_read_only_to_a_caller_with_a_consent_purpose_recorded() -> None:
    readout = Readout({"support": "always"})
    assert in_call.withdraw_variables(outcome("documentation"), "/p", UID, readout) == []
    out = in_call.withdraw_variables(outcome("training"), "/p", UID, readout)
    assert dict(out)[names.VAR_CALLREF] == callref.call_ref(UID)
    assert out[-1] == (names.VAR_WITHDRAWABLE, "training")  # still last: it enables *9
    assert names.VAR_CALLREF not in dict(in_call.withdraw_variables(outcome("training"), "/p"))


def _routes(change: dict[str, Any]) -> Any:
    def edit(data: dict[str, Any]) -> None:
        for route, value in change.items():
            data["routes"][route]["call_reference"] = value

    return edit


def test_readout_from_config_lists_enabled_routes_that_read_the_reference(
    tmp_path: Path,
) -> None:
    config = load_demo(tmp_path, _routes({"support": "always", "closed": "always", "mixed": "off"}))
    readout = withdraw_route.readout(config, KEY)
    assert dict(readout.routes) == {"support": "always", "callref": "withheld"}
    assert readout.key == KEY


def test_call_reference_key_takes_off_withheld_or_always_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"routes\.support\.call_reference: must be one of"):
        load_demo(tmp_path, _routes({"support": "yes"}))


def test_call_reference_on_a_route_without_consent_is_a_warning(tmp_path: Path) -> None:
    config = load_demo(tmp_path, _routes({"docs": "always"}))
    assert any(
        "routes.docs.call_reference" in w and "asks no consent" in w for w in config.warnings
    )


async def test_stasis_app_sets_the_call_reference_for_a_caller_who_said_yes(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.app = StasisApp(
        h.ari,
        ConfigPlanner(h.config, rng=lambda: 0.0),
        h.store,
        prompts_dir="/p",
        call_refs=withdraw_route.readout(h.config, KEY),
    )
    await h.answer_question(UID, "1", route="callref")
    variables = dict(h.ari.variables(UID))
    assert variables[names.VAR_CALLREF] == callref.call_ref(UID, KEY)
    assert variables[names.VAR_CALLREF_READ] == "withheld"
    await h.answer_question("1767960000.43", "2", route="callref")  # refused: nothing to read
    assert names.VAR_CALLREF not in dict(h.ari.variables("1767960000.43"))


# -- prompts -----------------------------------------------------------------------------------


def test_every_route_prompt_is_made_in_danish_and_english() -> None:
    made = {(s.language, s.text.audio) for s in withdraw_route.prompt_sources()}
    bases = [*names.WITHDRAW_ROUTE_PROMPTS.values(), names.CALLREF_PROMPT]
    assert made == {(lang, base) for lang in ("da", "en") for base in bases}


# -- the dialplan ------------------------------------------------------------------------------


def _context(name: str) -> str:
    m = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", hook_code(), re.M | re.S)
    assert m, name
    return m.group(1)


def test_route_plays_each_prompt_and_handles_each_answer() -> None:
    route = _context(names.WITHDRAW_ROUTE_CONTEXT)
    for base in names.WITHDRAW_ROUTE_PROMPTS.values():
        assert f"${{LOCAL(dir)}}/{base}" in route, base
    for result in ("done", "bad_ref", "unknown_ref", "ambiguous"):
        assert f'"${{LOCAL(result)}}" = "{result}"' in route, result
    assert f"UserEvent({names.WITHDRAW_REQUEST_USER_EVENT}," in route
    assert f"@{names.WITHDRAW_REQUEST_MARK_CONTEXT}," in route
    mark = _context(names.WITHDRAW_REQUEST_MARK_CONTEXT)
    assert f"DB({names.ASTDB_FAMILY}/{names.ASTDB_WITHDRAW_REQUEST_PREFIX}${{FILTER(" in mark


def test_route_marks_the_request_before_it_tells_the_app() -> None:
    route = _context(names.WITHDRAW_ROUTE_CONTEXT)
    assert route.index("Originate(Local/") < route.index("UserEvent(")


def test_caller_controlled_text_is_used_only_through_filter() -> None:
    code = "\n".join(
        _context(c)
        for c in (
            names.HOOK_CONTEXT,
            names.WITHDRAW_ROUTE_CONTEXT,
            names.WITHDRAW_REQUEST_MARK_CONTEXT,
        )
    )
    for source in (
        "CALLERID(",
        "${EXTEN}",
        "${ARG1}",
        "${CALLCONSENT_WITHDRAW_KEY}",
        f"${{{names.VAR_WITHDRAW_RESULT}}})",
    ):
        for m in re.finditer(re.escape(source), code):
            before = code[max(0, m.start() - 30) : m.start()]
            wide = code[max(0, m.start() - 60) : m.start()]
            if before.endswith("Set(") or re.search(
                rf"Set\(({names.VAR_CALLERID_RAW_NUM}|{names.VAR_CALLERID_RAW_NAME})=\$\{{$", wide
            ):
                continue  # the normalisation's target, or the raw value kept as data for ARI
            assert re.search(r"FILTER\([^,]*,(\$\{)?$", before), f"unfiltered {source}: {before}"


def test_serve_uses_the_reference_key_and_warns_when_there_is_none(tmp_path: Path) -> None:
    config = load_demo(tmp_path)  # the callref route reads references
    with structlog.testing.capture_logs() as logs:
        assert build_readout(config).key is None
    assert [e["routes"] for e in logs if e["event"] == "call_reference_without_key"] == [
        ["callref"]
    ]
    key_file = callref.key_path(config.storage.ledger_path)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(KEY)
    with structlog.testing.capture_logs() as logs:
        assert build_readout(config).key == KEY
    assert logs == []
