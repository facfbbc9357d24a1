"""Are the objection codes bound in Asterisk's features.conf? (Art 21, R30)

Where an enabled route records documentation that may be objected to (6(1)(e)/(f)), its notice
says the caller can object by telling the agent: the agent's code (``callconsent_object_agent``,
e.g. ``*6``) is what makes that true, and the caller's own code while bridged
(``callconsent_object``, e.g. ``*3``) is the keypress route to it. ``check-config`` and ``serve``
warn (never fail: features.conf may live on another host) when an entry is missing, runs
another context, or clashes with the other callconsent codes.
"""

from __future__ import annotations

from pathlib import Path

from callconsent import names
from callconsent.config import Config
from callconsent.withdrawal.features_check import bound_sequence

_OTHERS = (names.WITHDRAW_FEATURE, names.SENSITIVE_FEATURE, names.WITHDRAW_AGENT_FEATURE)


def objectable_routes(config: Config) -> list[str]:
    """Enabled routes whose documentation purpose may be objected to."""
    return [
        name
        for name, route in config.routes.items()
        if route.enabled
        and "documentation" in route.purposes
        and route.purposes["documentation"].objection is not None
    ]


def objection_feature_warnings(config: Config, features_conf: Path) -> list[str]:
    routes = objectable_routes(config)
    if not routes:
        return []
    try:
        text = features_conf.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [
            f"{features_conf}: cannot read it ({exc.strerror}): the objection codes cannot be checked"
        ]
    out: list[str] = []
    for feature, code, context, who in (
        (
            names.OBJECTION_AGENT_FEATURE,
            "*6",
            names.OBJECTION_AGENT_CONTEXT,
            "agents cannot record an objection a caller states orally",
        ),
        (
            names.OBJECTION_FEATURE,
            "*3",
            names.OBJECTION_CONTEXT,
            "callers cannot object by a key while bridged",
        ),
    ):
        bound = bound_sequence(text, feature)
        if bound is None:
            out.append(
                f"{features_conf}: no {feature} entry: {who} (Art 21) on routes {routes}; add "
                f"[applicationmap] {feature} => {code},self,Gosub({context},s,1)"
            )
            continue
        sequence, app = bound
        if context not in app:
            out.append(f"{features_conf}: {feature} runs {app!r}, not Gosub({context},s,1)")
        for other in _OTHERS:
            theirs = bound_sequence(text, other)
            if theirs is not None and (
                sequence.startswith(theirs[0]) or theirs[0].startswith(sequence)
            ):
                out.append(
                    f"{features_conf}: {feature} ({sequence!r}) clashes with {other} "
                    f"({theirs[0]!r}): use codes where neither is a prefix of the other"
                )
    return out
