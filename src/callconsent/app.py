"""Wiring: builds every dependency from the config and passes it in. Nothing else does."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypedDict

import aiohttp
import structlog

from callconsent import names, service
from callconsent.agents import registry as agents
from callconsent.agents.bridge import BridgeHandler
from callconsent.agents.own_consent_adapter import OwnConsentHandler, revoke_runner
from callconsent.agi.adapter import AgiFlow
from callconsent.agi.server import AgiServer
from callconsent.ami import Ami, AmiError
from callconsent.ari import AriClient
from callconsent.config import (
    Config,
    ConfigError,
    build_plan,
    recording_prerequisites,
    route_for,
)
from callconsent.consent import CallPlan
from callconsent.encryption import at_rest_for
from callconsent.evidence import callref
from callconsent.notice_archive import NoticeArchiver, plan_versions
from callconsent.objection.adapter import ObjectionHandler, route_settings
from callconsent.parties.adapter import PartyWatch
from callconsent.parties.recover import recover as recover_calls
from callconsent.parties.tracker import Classifier
from callconsent.reload import LiveConfig
from callconsent.sdnotify import Notifier
from callconsent.sensitive.adapter import SensitiveFlagHandler
from callconsent.stasis import Skip, StasisApp
from callconsent.stasis_ami import AmiCallEnds
from callconsent.store import EvidenceStore
from callconsent.unavailable.adapter import UnavailableCollector
from callconsent.untrusted import UntrustedEventGuard
from callconsent.withdrawal.in_call_adapter import WithdrawalHandler
from callconsent.withdrawal.route import Readout, readout
from callconsent.withdrawal.route_adapter import (
    WithdrawRequestHandler,
    lifecycle_runner,
    seal_key,
)

log = structlog.get_logger("callconsent.app")

#: Longest pause between two attempts to reach ARI while Asterisk is away (R36): the app is
#: back within about a second of Asterisk, and a refused connection on loopback costs nothing.
ARI_RECONNECT_MAX_SECONDS = 1.0


class ConfigPlanner:
    """Chooses the route for a call and builds its consent plan from the config."""

    def __init__(
        self,
        config: Config,
        rng: Callable[[], float] = random.random,
        archiver: NoticeArchiver | None = None,
    ) -> None:
        self._config = config
        self._rng = rng
        self._archiver = archiver  # serve's: every notice version played is archived (R20)

    def plan(self, route_arg: str | None, dialled: str | None) -> CallPlan | Skip:
        route = route_for(self._config, route_arg, dialled)
        if route is None:
            if self._disabled_route_for(route_arg, dialled):  # R10: nothing is recorded
                return Skip(names.Status.NOT_REQUIRED, "route_disabled")
            return Skip(names.Status.ERROR, "unknown_route")
        plan = build_plan(self._config, route.name, sampled=lambda rate: self._rng() < rate)
        if self._archiver is not None:
            self._archiver.ensure(plan_versions(plan))
        return plan

    def _disabled_route_for(self, route_arg: str | None, dialled: str | None) -> bool:
        """The call names a route that exists but is disabled: by the hook's argument, or
        (without one) by a dialled number among a route's ``dids``, as route_for() chooses."""
        if route_arg:
            return route_arg in self._config.routes
        if not dialled:
            return False
        wanted = dialled.lstrip("+")
        return any(d.lstrip("+") == wanted for r in self._config.routes.values() for d in r.dids)


def build_store(config: Config) -> EvidenceStore:
    return EvidenceStore(
        recordings_dir=config.storage.recordings_dir,
        ledger_path=config.storage.ledger_path,
        config_sha256=config.sha256,
        anchor_path=config.storage.anchor_path,
        at_rest=at_rest_for(config),  # recordings encrypted when they end (R33)
        spool_dir=config.storage.spool_dir,  # the clear WAV while it records (with at_rest)
    )


def build_readout(config: Config) -> Readout:
    """The call reference read to callers who consent (R17b), made with the reference key."""
    key = callref.load_key(config.storage.ledger_path)
    refs = readout(config, key)
    if refs.routes and key is None:  # guessable from the call's time: warn, as the docs say
        log.warning(
            "call_reference_without_key",
            routes=sorted(refs.routes),
            key=str(callref.key_path(config.storage.ledger_path)),
        )
    return refs


@dataclass(frozen=True, slots=True)
class AmiSide:
    """The AMI connection and the objection adapter the ARI side hands late keys to."""

    ami: Ami
    objections: ObjectionHandler
    call_ends: AmiCallEnds  # a recorded ARI call's end and late keys (attach the app)


def build_ami(config: Config, store: EvidenceStore) -> AmiSide | None:
    """The AMI side of the agent bridge (R15): the UserEvent from the agent gosub, MixMonitor on
    the caller, and the registry's AstDB mirror re-synced at every login; and of the in-call
    withdrawal (R16): its UserEvent, and the AstDB markers left while the app was away, finished
    at every login. None without ``asterisk.ami``: then nothing that needs an agent's consent is
    ever recorded, and in-call withdrawals are finished by the dialplan alone (the recording
    stops; the evidence waits in AstDB until the app connects to AMI); and of the agent's
    sensitive flag (R22): its UserEvent (without AMI the flag is not applied: see the docs); and
    of the withdrawal route (R17): its UserEvent, and the requests marked in AstDB while the app
    was away, carried out at every login (without AMI they wait in AstDB); and of the calls the
    hook let go unasked while the app was away (R36): their AstDB markers become ``unavailable``
    ledger entries at every login."""
    ami_config = config.asterisk.ami
    if ami_config is None:
        log.warning("agent_bridge_disabled", reason="asterisk.ami not configured")
        return None
    registry = agents.AgentRegistry.from_config(config)
    watch: PartyWatch | None = None
    call_ends = AmiCallEnds(connected=lambda: ami.connected)
    logins = 0

    async def resync() -> None:
        nonlocal logins
        logins += 1
        call_ends.login()  # ARI subscriptions again until AMI reports a key
        ended = await call_ends.recheck()  # recorded calls that ended while AMI was away
        if logins > 1 and watch is not None:  # AMI was away: stop what went unwatched (R36)
            await watch.watch_lost(ended=ended)
        if watch is not None:  # recorded calls in progress: watched again (R1, R2)
            await recover_calls(watch, ami, store, config.storage.recordings_dir)
        await unavailable.collect()  # calls the hook let go while the app was away (R36)
        await withdrawals.recover()  # withdrawals made while the app was away (R16)
        await requests.recover()  # requests on the withdrawal route while it was away (R17)
        try:
            count = await agents.sync(ami, registry)
        except (AmiError, agents.AgentRegistryError, OSError) as exc:
            log.error("agent_sync_failed", error=str(exc))
            return
        log.info("agent_sync", agents=count)

    ami = Ami(
        host=ami_config.host,
        port=ami_config.port,
        username=ami_config.username,
        password=ami_config.password.reveal(),
        on_login=resync,
    )
    unavailable = UnavailableCollector(
        ami, config.storage.ledger_path, anchor_path=config.storage.anchor_path
    )
    bridge = BridgeHandler(ami, store, registry)
    withdrawals = WithdrawalHandler(ami, store)
    requests = WithdrawRequestHandler(
        ami,
        lifecycle_runner(
            config.storage.recordings_dir,
            config.storage.ledger_path,
            anchor_path=config.storage.anchor_path,
        ),
        key=partial(seal_key, config.storage.ledger_path),  # the number sealed in AstDB
    )  # the withdrawal route on the IVR (R17a, b)
    own = OwnConsentHandler(  # the agent's own consent from their phone (R15, issue 16)
        ami,
        registry,
        revoke_runner(
            config.storage.recordings_dir,
            config.storage.ledger_path,
            anchor_path=config.storage.anchor_path,
        ),
    )
    flags = SensitiveFlagHandler(ami, store)
    guard = UntrustedEventGuard(ami, store, recover=(withdrawals.recover, requests.recover))
    ami.on_untrusted(guard.on_untrusted)  # fail closed, lose no withdrawal (issue 11)
    ami.on_untrusted(call_ends.on_untrusted)  # a hidden Hangup: ask ARI whether it is gone
    if config.parties is None:  # R1: serve refuses this config; kept for direct use
        log.warning("party_watch_disabled", reason="parties.internal not configured")
    else:  # transfers, new parties, hold (R1, R2, R15): AMI bridge, dial, hold, hangup events
        watch = PartyWatch(ami, store, registry, Classifier(config.parties.internal))
        for event, handler in watch.handlers().items():
            ami.on_event(event, handler)
    objections = ObjectionHandler(  # Art 21 during the call (R30): *6, *3, the digit
        ami,
        store,
        route_settings(config),
        config.storage.recordings_dir,
        bridged=watch.in_bridge if watch is not None else _unknown_bridge,
    )
    # the dialplan's UserEvents; a "late" one: its wait for the app's answer ended first
    for user_event, on_user_event, keys in (
        (names.AGENT_USER_EVENT, bridge.on_agent_event, names.AGENT_EVENT_KEYS),
        (names.AGENT_LATE_USER_EVENT, bridge.on_agent_late, names.AGENT_LATE_EVENT_KEYS),
        (names.WITHDRAW_USER_EVENT, withdrawals.on_withdraw_event, names.WITHDRAW_EVENT_KEYS),
        (
            names.WITHDRAW_REQUEST_USER_EVENT,
            requests.on_request_event,
            names.WITHDRAW_REQUEST_EVENT_KEYS,
        ),
        (
            names.WITHDRAW_REQUEST_LATE_USER_EVENT,
            requests.on_late,
            names.WITHDRAW_REQUEST_LATE_EVENT_KEYS,
        ),
        (names.AGENT_SELF_USER_EVENT, own.on_event, names.AGENT_SELF_EVENT_KEYS),
        (names.AGENT_SELF_LATE_USER_EVENT, own.on_late, names.AGENT_SELF_LATE_EVENT_KEYS),
        (names.SENSITIVE_USER_EVENT, flags.on_flag_event, names.SENSITIVE_EVENT_KEYS),
        (names.OBJECTION_USER_EVENT, objections.on_objection_event, names.OBJECTION_EVENT_KEYS),
    ):
        ami.on_user_event(user_event, on_user_event, keys=keys)
    for event, handler in call_ends.handlers().items():
        ami.on_event(event, handler)
    return AmiSide(ami, objections, call_ends)


def _unknown_bridge(_uniqueid: str) -> bool:
    """Without the party watch the bridge is unknown: an objection digit counts (fail safe)."""
    return False


async def start_agi(config: Config, flow: AgiFlow) -> AgiServer | None:
    """The FastAGI server of the ``callconsent-agi`` hook (config ``agi``), or None when it is
    disabled or cannot listen: then that hook's calls go on unrecorded (AGISTATUS FAILURE)."""
    if not config.agi.enabled:
        return None
    server = AgiServer(flow, bind=config.agi.bind, port=config.agi.port, allow=config.agi.allow)
    try:
        await server.start()
    except OSError as exc:
        log.error("agi_listen_failed", bind=config.agi.bind, port=config.agi.port, error=str(exc))
        return None
    return server


def watched(config: Config, ami: Ami | None) -> Callable[[], bool]:
    """Whether a recording may start now (R36): with the party watch configured, only while AMI
    is logged in, since a transfer while AMI is away would go unseen (no recording the app cannot
    watch). Without ``parties`` nothing is watched anyway (check-config warns)."""
    if ami is None or config.parties is None:
        return lambda: True
    return lambda: ami.connected


class _FlowOptions(TypedDict):
    """What both call-flow adapters (ARI and FastAGI) are given alike."""

    whisper_dir: str
    prompts_dir: str
    agent_wait: float
    call_refs: Readout | None
    config_sha256: Callable[[], str]
    objections: ObjectionHandler | None
    can_record: Callable[[], bool]


async def serve(config: Config, *, stop: asyncio.Event | None = None) -> None:
    """Run the Stasis app until SIGTERM/SIGINT (or ``stop``); then continue every call in the
    consent flow to the dialplan, unrecorded, and disconnect. SIGHUP reloads the config for new
    calls (callconsent/reload.py); /metrics and /health and systemd's notify protocol run beside
    (callconsent/service.py). A config whose enabled routes record without ``asterisk.ami`` and
    ``parties.internal`` is refused (R1, R2)."""
    missing = recording_prerequisites(config)
    if missing:
        raise ConfigError(missing)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    live = LiveConfig(config, lambda c: ConfigPlanner(c, archiver=NoticeArchiver(c)))
    notifier = Notifier()
    ari_config = config.asterisk.ari
    async with aiohttp.ClientSession() as session:
        ari = AriClient(
            ari_config.url,
            ari_config.username,
            ari_config.password.reveal(),
            ari_config.app,
            session=session,
            backoff_initial=0.25,
            backoff_max=ARI_RECONNECT_MAX_SECONDS,
        )
        store = build_store(config)
        NoticeArchiver(config).archive_all()  # the versions serve plays are archived (R20)
        whisper_dir = config.prompts_dir / config.agent_consent.whisper_language
        refs = build_readout(config)
        side = build_ami(config, store)  # created inside the running loop, as panoramisk needs
        ami = side.ami if side is not None else None
        # both call-flow adapters (ARI, FastAGI) get the same planner (reloaded on SIGHUP), the
        # same store, the same prompts and the same gates
        flow_options: _FlowOptions = {
            "whisper_dir": str(whisper_dir),
            "prompts_dir": str(config.prompts_dir),
            "agent_wait": config.agent_consent.answer_wait_seconds,
            "call_refs": refs,
            "config_sha256": live.sha256,
            "objections": side.objections if side is not None else None,
            "can_record": watched(config, ami),
        }
        # with AMI reporting keys, a recorded call's end and late keys come from AMI (no ARI
        # subscription); ARI's keys tell whether AMI's come too
        ends = side.call_ends if side is not None else None
        app = StasisApp(
            ari,
            live,
            store,
            ami_ends=ends.reporting if ends is not None else (lambda: False),
            heard_key=ends.heard_over_ari if ends is not None else (lambda: None),
            **flow_options,
        )
        if side is not None:
            side.call_ends.attach(app, ari)
        agi = AgiFlow(live, store, **flow_options)
        agi_server = await start_agi(config, agi)
        endpoints = service.Endpoints(
            config.metrics,
            lambda: service.health(
                ami is not None, app.active_calls + agi.active_calls, live.sha256()
            ),
        )
        await endpoints.start()
        if ami is not None:
            await ami.connect()  # retries by itself; the registry is synced at each login
        runner = asyncio.create_task(ari.run(app), name="ari")
        beat = asyncio.create_task(
            service.heartbeat(stop, notifier, lambda: app.active_calls + agi.active_calls),
            name="heartbeat",
        )
        reloads: set[asyncio.Task[None]] = set()

        async def reload() -> None:
            notifier.reloading()
            new = await live.reload()
            if new is not None:
                refs = build_readout(new)
                app.use_call_refs(refs)
                agi.use_call_refs(refs)
            notifier.ready(f"serving; config {live.sha256()[:12]}")

        def on_sighup() -> None:
            task = asyncio.create_task(reload(), name="reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        log.info("serving", app=ari_config.app, url=ari_config.url, config=str(config.path))
        notifier.ready(f"serving; config {live.sha256()[:12]}")
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopped}, return_when=asyncio.FIRST_COMPLETED)
        notifier.stopping()
        loop.remove_signal_handler(signal.SIGHUP)
        log.info("stopping", calls_in_flow=app.active_calls + agi.active_calls)
        await app.shutdown()
        await agi.shutdown()
        if agi_server is not None:
            await agi_server.close()
        stop.set()
        await asyncio.gather(beat, *reloads, return_exceptions=True)
        await endpoints.stop()
        if ami is not None:
            await ami.close()
        if side is not None:  # recordings whose end AMI reported: finalised before the store closes
            await side.call_ends.drain()
        await ari.stop()
        await store.aclose()  # last: the ledger lines still queued are written
        stopped.cancel()
        if runner.done() and not runner.cancelled() and runner.exception() is not None:
            raise runner.exception()  # type: ignore[misc]
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
    log.info("stopped")
