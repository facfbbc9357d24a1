"""The config in force for new calls, and its reload on SIGHUP (issue 15).

A call takes its plan (notices, purposes, digits, timeouts) and the config's hash when it enters
the app, so a reload never changes a call in progress: only calls that enter afterwards use the
new file. A file that does not load (any error ``check-config`` would show) is rejected and the
old config stays in force. So is a file that changes what the running process is wired to
(``asterisk``, ``storage``, ``prompts_dir``, ``agent_consent``, ``parties``, ``metrics``): those
need a restart, and half-applying them would make the evidence cite a config the process does not
run. Every outcome is logged and counted (``callconsent_config_reloads_total``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import structlog

from callconsent import metrics
from callconsent.config import Config, ConfigError, load_config
from callconsent.consent import CallPlan
from callconsent.ports import Planner, Skip

log = structlog.get_logger("callconsent.reload")

#: Config sections the running process is wired to: a reload that changes one is rejected.
RESTART_ONLY: Final = (
    "asterisk",
    "storage",
    "prompts_dir",
    "agent_consent",
    "parties",
    "metrics",
    "agi",
)


class LiveConfig:
    """The current config and its planner; a :class:`Planner` for the Stasis app."""

    def __init__(self, config: Config, make_planner: Callable[[Config], Planner]) -> None:
        self._config = config
        self._make_planner = make_planner
        self._planner = make_planner(config)
        self._lock = asyncio.Lock()

    @property
    def config(self) -> Config:
        return self._config

    def sha256(self) -> str:
        return self._config.sha256

    def plan(self, route_arg: str | None, dialled: str | None) -> CallPlan | Skip:
        return self._planner.plan(route_arg, dialled)

    async def reload(self) -> Config | None:
        """Read the config file again; the new config when it is now in force, else None."""
        async with self._lock:  # two SIGHUPs in a row: one reload after the other
            old = self._config
            try:
                new = await asyncio.to_thread(load_config, old.path)
            except ConfigError as exc:
                self._reject(old, "invalid", errors=list(exc.errors))
                return None
            changed = [key for key in RESTART_ONLY if getattr(new, key) != getattr(old, key)]
            if changed:
                self._reject(old, "needs_restart", sections=changed)
                return None
            if new.sha256 == old.sha256:
                log.info("config_reload_unchanged", config=str(old.path), sha256=old.sha256)
                metrics.RELOADS.inc(result="unchanged")
                return None
            self._planner = self._make_planner(new)
            self._config = new
            for warning in new.warnings:
                log.warning("config_warning", warning=warning)
            log.info(
                "config_reloaded",
                config=str(new.path),
                sha256=new.sha256,
                previous_sha256=old.sha256,
                routes=sorted(name for name, route in new.routes.items() if route.enabled),
            )
            metrics.RELOADS.inc(result="applied")
            return new

    def _reject(self, old: Config, why: str, **detail: object) -> None:
        log.error(
            "config_reload_rejected",
            config=str(old.path),
            reason=why,
            kept_sha256=old.sha256,
            **detail,
        )
        metrics.RELOADS.inc(result="rejected")
