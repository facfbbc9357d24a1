"""The Art 30 record of processing (R31), generated from the config plus operating statistics.

Per purpose: (a) controller and DPO, (b) the purpose, (c) categories of data subjects and of
data, (d) recipients, (e) transfers to third countries, (f) erasure time limits, (g) security
measures. What the config does not say (today: recipients, transfers, organisational security
measures, a missing DPO contact) is **flagged**, never invented. Statistics come from the index:
calls, consent given/refused per purpose, deletions by reason, holds, exports, anonymisations.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from callconsent.lifecycle._context import Context
from callconsent.lifecycle.hold import is_overdue
from callconsent.lifecycle.query import holds

if TYPE_CHECKING:
    from callconsent.config import Config

_DESCRIPTION: Final = {
    "documentation": "Documentation of what is agreed or said on the call",
    "training": "Training of staff, with the caller's and the agent's consent",
    "emergency_quality": "Quality assurance of an emergency service (exception, no consent)",
}
#: Technical measures the software itself implements (R32-R35).
TECHNICAL_MEASURES: Final = (
    "recordings only on configured routes, after the notice; consent purposes only on an "
    "active key press (R4, R10, R11)",
    "files written 0640 and date folders 2770 by the app (no access for others); a password "
    "file open to group or others is refused when the config is loaded (R32)",
    "sha256 of every recording in its sidecar; hash-chained append-only ledger; `verify` (R34)",
    "automatic deletion after the retention period (the purge): the audio is deleted and its "
    "sidecar replaced by a tombstone holding only the call id, file name, hash, time and "
    "reason; in a recording kept for several purposes each purpose ends at its own retention; "
    "legal hold with review dates (R25, R26)",
    "the ledger holds each call's caller number and name only encrypted (AES-256-GCM) under a "
    "key of that call's own, kept in a key store beside the ledger; lookups by number use a "
    "keyed digest (HMAC-SHA256 with an installation secret), the index holds no number; "
    "erasure, a withdrawal that deletes the recording and the end of retention + the claims "
    "period destroy the key (overwritten in the key store), after which the number and name "
    "can no longer be read while the hash chain still verifies; calls in a ledger written "
    "before this are only marked anonymised and that file still holds their values (R21, R29)",
    "audit log of every list, export, erase, hold and purge action with who, when and why (R35)",
)
NOT_CONFIGURED: Final = None


def technical_measures(config: Config) -> list[str]:
    """:data:`TECHNICAL_MEASURES`, plus encryption at rest when the config turns it on."""
    measures = list(TECHNICAL_MEASURES)
    if config.encryption is not None:
        measures.append(
            "recordings encrypted at rest when they end: AES-256-GCM under a key per recording, "
            f"wrapped by key-encryption key {config.encryption.key_id!r}; deletion destroys the "
            "recording's key (R33)"
        )
    else:
        measures.append("recordings are stored unencrypted (no `encryption` in the config; R33)")
    return measures


def build_ropa(ctx: Context, config: Config, *, claims_days: int) -> dict[str, Any]:
    """The record as a dict (``flags`` lists every empty field). Audited as a list action."""
    org = config.organisation
    flags: list[str] = []
    controller = {
        "name": org.name,
        "controller_type": org.controller_type,
        "contact": org.privacy_url,
        "dpo": org.dpo_contact,
    }
    if not org.dpo_contact:
        flags.append("controller.dpo: empty (organisation.dpo_contact is not set)")
    per: dict[str, dict[str, Any]] = {}
    for route in config.routes.values():
        for rp in route.purposes.values():
            p = per.setdefault(
                rp.purpose,
                {
                    "purpose": rp.purpose,
                    "description": _DESCRIPTION.get(rp.purpose, rp.purpose),
                    "routes": [],
                    "enabled_routes": [],
                    "lawful_bases": set(),
                    "art9_bases": set(),
                    "retention_days": set(),
                    "special_categories": set(),
                    "notices": set(),
                },
            )
            p["routes"].append(route.name)
            if route.enabled:
                p["enabled_routes"].append(route.name)
            p["lawful_bases"].add(rp.lawful_basis)
            if rp.art9_basis:
                p["art9_bases"].add(rp.art9_basis)
            p["retention_days"].add(rp.retention_days)
            p["special_categories"].add(route.special_categories)
            p["notices"].add(rp.notice)
    purposes = []
    for name, p in per.items():
        data = [
            "voice (audio of both parties)",
            "caller number (CLI) and name as signalled",
            "dialled number, call ids and times",
            "notice played and consent evidence",
        ]
        if "likely" in p["special_categories"]:
            data.append("possibly special categories (health, CPR) said on the call")
        subjects = ["callers", "employees (agents)"]
        record = {
            "purpose": name,
            "description": p["description"],
            "routes": p["routes"],
            "enabled_routes": p["enabled_routes"],
            "lawful_bases": sorted(p["lawful_bases"]),
            "art9_bases": sorted(p["art9_bases"]),
            "notices": sorted(p["notices"]),
            "categories_of_data_subjects": subjects,
            "categories_of_data": data,
            "recipients": NOT_CONFIGURED,
            "transfers": NOT_CONFIGURED,
            "erasure_time_limits": {
                "recordings_days": sorted(p["retention_days"]),
                "consent_evidence": f"retention + {claims_days} days claims period "
                "(then the purge destroys the keys of the callers' numbers and names: "
                "unreadable from then on)",
            },
            "security_measures": {
                "technical": technical_measures(config),
                "organisational": NOT_CONFIGURED,
            },
        }
        for key in ("recipients", "transfers"):
            flags.append(f"purposes.{name}.{key}: empty (not in the config; fill in by hand)")
        flags.append(
            f"purposes.{name}.security_measures.organisational: empty (not in the "
            "config: access control, backups, training, processor agreements)"
        )
        purposes.append(record)
    if not purposes:
        flags.append("purposes: none configured")
    record_ = {
        "controller": controller,
        "purposes": purposes,
        "statistics": statistics(ctx),
        "flags": flags,
        "generated_at": ctx.now.date().isoformat(),
        "config_sha256": config.sha256,
    }
    ctx.audit.write("ropa", actor=ctx.actor, at=ctx.now, flags=len(flags))
    return record_


def statistics(ctx: Context) -> dict[str, Any]:
    with ctx.index.locked(shared=True):
        ctx.index.update()
        db = ctx.index.db
        calls = db.execute("SELECT count(*) FROM calls").fetchone()[0]
        outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        for (summary,) in db.execute("SELECT purposes FROM calls WHERE purposes != ''"):
            for part in summary.split(","):
                purpose, _, status = part.partition("=")
                outcomes[purpose][status] += 1
        deletions = dict(
            db.execute("SELECT detail, count(*) FROM entries WHERE type='deleted' GROUP BY detail")
        )
        states = dict(db.execute("SELECT state, count(*) FROM recordings GROUP BY state"))
        exports = db.execute("SELECT count(*) FROM exports").fetchone()[0]
        anonymised = db.execute("SELECT count(*) FROM anonymised").fetchone()[0]
        current = holds(ctx.index)
    today: date = ctx.now.date()
    per_purpose = {}
    for purpose, c in sorted(outcomes.items()):
        asked = c["given"] + c["refused"]
        per_purpose[purpose] = {
            **dict(c),
            "consent_rate": round(c["given"] / asked, 4) if asked else None,
        }
    return {
        "calls": calls,
        "purposes": per_purpose,
        "recordings_by_state": states,
        "deletions_by_reason": deletions,
        "holds": len(current),
        "holds_overdue": sum(1 for h in current.values() if is_overdue(h, today)),
        "exports": exports,
        "calls_anonymised": anonymised,
    }


def to_markdown(record: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        if value is None or value == []:
            return "**⚠ EMPTY: fill in**"
        if isinstance(value, list):
            return "; ".join(map(str, value))
        if isinstance(value, dict):
            return "; ".join(f"{k}: {show(v)}" for k, v in value.items())
        return str(value)

    c = record["controller"]
    out = [
        "# Fortegnelse over behandlingsaktiviteter / Record of processing (GDPR Art 30)",
        "",
        f"Generated {record['generated_at']} from config sha256 `{record['config_sha256']}`.",
        "",
        "## (a) Controller",
        "",
        f"- Name: {c['name']} ({c['controller_type']})",
        f"- Contact: {c['contact']}",
        f"- DPO: {show(c['dpo'])}",
    ]
    labels = (
        ("(b) Purpose", "description"),
        ("Lawful bases", "lawful_bases"),
        ("Art 9(2) bases", "art9_bases"),
        ("Routes (enabled)", "enabled_routes"),
        ("(c) Categories of data subjects", "categories_of_data_subjects"),
        ("(c) Categories of data", "categories_of_data"),
        ("(d) Recipients", "recipients"),
        ("(e) Transfers to third countries", "transfers"),
        ("(f) Erasure time limits", "erasure_time_limits"),
    )
    for p in record["purposes"]:
        out += ["", f"## Purpose: {p['purpose']}", ""]
        out += [
            f"- {label}: {show(p[key]) if key != 'art9_bases' or p[key] else 'none'}"
            for label, key in labels
        ]
        out.append("- (g) Security measures:")
        out += [f"  - {m}" for m in p["security_measures"]["technical"]]
        out.append(f"  - organisational: {show(p['security_measures']['organisational'])}")
    s = record["statistics"]
    out += ["", "## Statistics", "", f"- Calls: {s['calls']}"]
    for purpose, c_ in s["purposes"].items():
        rate = "n/a" if c_["consent_rate"] is None else f"{c_['consent_rate']:.1%}"
        counts = ", ".join(f"{k} {v}" for k, v in c_.items() if k != "consent_rate")
        out.append(f"- {purpose}: {counts}; consent rate {rate}")
    out += [
        f"- Recordings by state: {show(s['recordings_by_state']) or 'none'}",
        f"- Deletions by reason: {show(s['deletions_by_reason']) or 'none'}",
        f"- Holds: {s['holds']} ({s['holds_overdue']} overdue)",
        f"- Exports: {s['exports']}; calls anonymised: {s['calls_anonymised']}",
    ]
    out += ["", "## Flags (empty fields)", ""] + [f"- {f}" for f in record["flags"] or ["none"]]
    return "\n".join(out) + "\n"
