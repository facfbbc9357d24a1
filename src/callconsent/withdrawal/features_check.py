"""Is the caller's in-call withdrawal code in Asterisk's features.conf the one the config (and the
notices) promise? (R16)

The code a caller presses is bound in features.conf, not in callconsent.yaml:

    [applicationmap]
    callconsent_withdraw => *9,self,Gosub(callconsent-withdraw,s,1)

while every consent purpose's ``consent.withdraw_sequence`` (default ``*9``) is what its notice
tells the caller to press. ``callconsent check-config`` and ``callconsent serve`` compare the two
and warn (never fail: features.conf may live on another host) when the file cannot be read, has
no such entry, binds another code, or routes promise different codes (one entry serves them all).
They also warn when a route has ``special_categories: likely`` but features.conf has no entry for
the agent's sensitive-data flag (``callconsent_sensitive``, R22), or when its code clashes with
the withdrawal code; and when routes ask for consent but features.conf has no entry for the
agent's withdrawal code (``callconsent_withdraw_agent``, R16: the caller asks the agent orally),
or its code clashes with the caller's or the flag's code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from callconsent import names
from callconsent.config import Config

DEFAULT_FEATURES_CONF: Final = Path("/etc/asterisk/features.conf")
_SECTION: Final = re.compile(r"^\s*\[([^\]]+)\]")
_ENTRY: Final = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=>?\s*([^,\s]*)\s*,\s*([^,\s]*)\s*,(.*)$")


def promised_sequences(config: Config) -> set[str]:
    """The withdrawal codes the enabled routes' consent purposes promise."""
    return {
        rp.consent.withdraw_sequence
        for route in config.routes.values()
        if route.enabled
        for rp in route.purposes.values()
        if rp.consent is not None
    }


def bound_sequence(
    features_conf_text: str, feature: str = names.WITHDRAW_FEATURE
) -> tuple[str, str] | None:
    """(key sequence, application) of the ``feature`` applicationmap entry (default: the
    caller's ``callconsent_withdraw``)."""
    section = ""
    for raw in features_conf_text.splitlines():
        line = raw.split(";", 1)[0].rstrip()
        head = _SECTION.match(line)
        if head:
            section = head.group(1).strip().lower()
            continue
        m = _ENTRY.match(line)
        if section == "applicationmap" and m and m.group(1) == feature:
            return m.group(2), m.group(4).strip()
    return None


def sensitive_feature_warnings(config: Config, text: str, features_conf: Path) -> list[str]:
    """The agent's sensitive-data flag (R22): needed when a route has ``special_categories:
    likely``; its code must not clash with the caller's withdrawal code (same, or a prefix)."""
    bound = bound_sequence(text, names.SENSITIVE_FEATURE)
    likely = [n for n, r in config.routes.items() if r.enabled and r.special_categories == "likely"]
    if bound is None:
        if not likely:
            return []
        return [
            f"{features_conf}: no {names.SENSITIVE_FEATURE} entry: agents cannot flag health/CPR "
            f"data (R22) on routes {likely}; add [applicationmap] {names.SENSITIVE_FEATURE} => "
            f"*7,self,Gosub({names.SENSITIVE_CONTEXT},s,1)"
        ]
    withdraw = bound_sequence(text)
    code = bound[0]
    if withdraw is not None and _clash(code, withdraw[0]):
        return [
            f"{features_conf}: {names.SENSITIVE_FEATURE} ({code!r}) clashes with "
            f"{names.WITHDRAW_FEATURE} ({withdraw[0]!r}): use codes where neither is a prefix "
            "of the other"
        ]
    return []


def _clash(a: str, b: str) -> bool:
    """Two key sequences clash when they are the same or one is a prefix of the other."""
    return a.startswith(b) or b.startswith(a)


def agent_withdraw_feature_warnings(text: str, features_conf: Path) -> list[str]:
    """The agent's withdrawal code for a caller who asks orally (R16): needed whenever a route
    asks for consent; it must not clash with the caller's withdrawal code or the flag code."""
    feature = names.WITHDRAW_AGENT_FEATURE
    bound = bound_sequence(text, feature)
    if bound is None:
        return [
            f"{features_conf}: no {feature} entry: agents cannot withdraw consent for a caller "
            f"who asks orally (R16); add [applicationmap] {feature} => "
            f"*8,self,Gosub({names.WITHDRAW_AGENT_CONTEXT},s,1)"
        ]
    code, app = bound
    out: list[str] = []
    if names.WITHDRAW_AGENT_CONTEXT not in app:
        out.append(
            f"{features_conf}: {feature} runs {app!r}, not "
            f"Gosub({names.WITHDRAW_AGENT_CONTEXT},s,1)"
        )
    for other in (names.WITHDRAW_FEATURE, names.SENSITIVE_FEATURE):
        theirs = bound_sequence(text, other)
        if theirs is not None and _clash(code, theirs[0]):
            out.append(
                f"{features_conf}: {feature} ({code!r}) clashes with {other} ({theirs[0]!r}): "
                "use codes where neither is a prefix of the other"
            )
    return out


def withdraw_feature_warnings(config: Config, features_conf: Path) -> list[str]:
    """The withdrawal code's warnings, then the sensitive flag's (when the file is readable)."""
    wanted = promised_sequences(config)
    if not wanted:
        try:
            text = features_conf.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return sensitive_feature_warnings(config, text, features_conf)
    expected = (
        f"[applicationmap] {names.WITHDRAW_FEATURE} => {sorted(wanted)[0]},self,"
        f"Gosub({names.WITHDRAW_CONTEXT},s,1)"
    )
    try:
        text = features_conf.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [
            f"{features_conf}: cannot read it ({exc.strerror}): the in-call withdrawal code "
            f"cannot be checked; it needs {expected} (--features-conf PATH to check a copy)"
        ]
    out: list[str] = []
    if len(wanted) > 1:
        out.append(
            f"routes promise different withdrawal codes {sorted(wanted)}: features.conf binds "
            "one code for all calls; use the same consent.withdraw_sequence everywhere"
        )
    bound = bound_sequence(text)
    if bound is None:
        out.append(
            f"{features_conf}: no {names.WITHDRAW_FEATURE} entry: callers cannot withdraw "
            f"during the call (R16); add {expected}"
        )
        return (
            out
            + sensitive_feature_warnings(config, text, features_conf)
            + agent_withdraw_feature_warnings(text, features_conf)
        )
    sequence, app = bound
    if sequence not in wanted:
        out.append(
            f"{features_conf}: {names.WITHDRAW_FEATURE} is bound to {sequence!r}, but the "
            f"notices promise {' / '.join(sorted(wanted))} (consent.withdraw_sequence)"
        )
    if names.WITHDRAW_CONTEXT not in app:
        out.append(
            f"{features_conf}: {names.WITHDRAW_FEATURE} runs {app!r}, not "
            f"Gosub({names.WITHDRAW_CONTEXT},s,1)"
        )
    return (
        out
        + sensitive_feature_warnings(config, text, features_conf)
        + agent_withdraw_feature_warnings(text, features_conf)
    )
