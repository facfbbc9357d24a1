"""Thin AMI helpers over panoramisk: one method per action, every failure one :class:`AmiError`.

    ami = Ami(host="127.0.0.1", port=5038, username="callconsent", password=secret)
    await ami.connect()                  # inside the running loop (panoramisk needs that)
    await ami.db_put("callconsent", "agent/agent1", "1")
    await ami.mixmonitor(caller_uniqueid, "/var/.../x.wav", "bi(CALLCONSENT_MIXMONITOR_ID)")
    ami.on_user_event("CallconsentAgent", handler, keys=("Caller", "Agent", "Flag"))
    ami.on_untrusted(guard)                          # guard(report: Untrusted), see below

Nothing caller-controlled ever reaches a header: every value is checked to hold no CR/LF (an AMI
header injection) and the values the app sends are its own (ids, paths it built, 0/1).

Caller text inside the events Asterisk sends can forge header lines and whole events (see
:mod:`callconsent.ami_wire`). The stream is therefore read by :mod:`callconsent.ami_wire`, not by
panoramisk's parser (which keeps a repeated header as a list, and one spelled in another case
silently replaces the first; the protocol that reads it: :mod:`callconsent._ami_protocol`): an
untrusted message (a repeated header, an event cut in two, an event posing as a response)
reaches no handler. It is logged (``ami_event_untrusted``, values escaped) and handed to the
``on_untrusted`` guard with the ids it names, so the calls it may concern stop recording (fail
closed). A UserEvent handler sees only the keys the dialplan sets
(plus the channel's ``Uniqueid``); an action's answer is matched only when it is trusted.

panoramisk re-sends actions still unanswered when the connection drops once it is back. A late
MixMonitor or a stale DBPut must never run: each action here waits ``timeout`` seconds, and a
timed-out or cancelled action's future is done, which panoramisk's replay skips.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from panoramisk import Manager

from callconsent import ami_wire, metrics
from callconsent._ami_protocol import GuardedProtocol
from callconsent.config import SecretUnavailable

if TYPE_CHECKING:
    from callconsent.config import AmiConfig

log = structlog.get_logger("callconsent.ami")

DEFAULT_TIMEOUT: Final = 5.0
#: Seconds between attempts to reach AMI while Asterisk is away (panoramisk takes whole seconds).
RECONNECT_SECONDS: Final = 1
#: How long a command (the CLI) waits for the AMI login.
LOGIN_WAIT_SECONDS: Final = 5.0
_UNSAFE: Final = re.compile(r"[\r\n\x00]")

EventHandler = Callable[[dict[str, str]], Awaitable[None]]
#: A handler of Asterisk's own events (``BridgeEnter``, ...): called synchronously in arrival
#: order, so a state it keeps sees the events in Asterisk's order; it spawns its own I/O.
SyncEventHandler = Callable[[dict[str, str]], None]


@dataclass(frozen=True, slots=True)
class Untrusted:
    """An AMI message the app did not act on: its event name (as sent, may be caller text),
    why it is untrusted, and every id it names (ids of calls that must fail safe)."""

    event: str
    problems: tuple[str, ...]
    ids: frozenset[str]


UntrustedHandler = Callable[[Untrusted], None]


class AmiError(Exception):
    """An AMI action failed: not connected, timed out, refused by Asterisk or malformed."""

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(f"AMI {action}: {detail}")
        self.action = action
        self.detail = detail

    @property
    def channel_gone(self) -> bool:
        """Asterisk has no such channel (app_mixmonitor.c, manager.c): the call has ended."""
        return "no such channel" in self.detail.lower()


class AmiOps(Protocol):
    """The AMI actions the app uses (a fake implements this in tests)."""

    async def db_put(self, family: str, key: str, value: str) -> None: ...
    async def db_del(self, family: str, key: str) -> None: ...
    async def mixmonitor(self, channel: str, file: str, options: str) -> None: ...
    async def setvar(self, channel: str, variable: str, value: str) -> None: ...


def _check(action: str, headers: Mapping[str, str]) -> None:
    for name, value in headers.items():
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise AmiError(action, f"header {name!r} holds a line break or NUL")


class Ami:
    """One AMI connection. panoramisk reconnects by itself; ``on_login`` runs after each login."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        timeout: float = DEFAULT_TIMEOUT,
        on_login: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._config = {"host": host, "port": port, "username": username, "secret": password}
        self._timeout = timeout
        self._on_login = on_login
        self._manager: Manager | None = None
        self._handlers: dict[str, list[tuple[EventHandler, tuple[str, ...]]]] = {}
        self._event_handlers: dict[str, list[SyncEventHandler]] = {}
        self._untrusted: list[UntrustedHandler] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._logged_in = asyncio.Event()
        self._logins = 0

    @property
    def connected(self) -> bool:
        """Logged in now. (panoramisk keeps ``authenticated`` true after the connection is lost
        until the next login attempt gets through: the disconnect callback decides here.)"""
        return (
            self._manager is not None
            and bool(self._manager.authenticated)
            and self._logged_in.is_set()
        )

    async def connect(self, *, wait: float | None = None) -> None:
        """Start connecting (panoramisk retries every second). With ``wait``: wait that long for the
        login, else raise :class:`AmiError` (the CLI); without: return at once (the app)."""
        if self._manager is None:
            self._manager = Manager(
                **self._config,
                loop=asyncio.get_running_loop(),
                # UserEvent; bridge/dial/hangup for the parties (R1) and a recorded call's end;
                # DTMFEnd for the objection digit after the flow (R30)
                events="call,user,dtmf",
                on_login=self._logged_in_cb,
                on_disconnect=self._disconnected_cb,
                reconnect_timeout=RECONNECT_SECONDS,
                protocol_factory=lambda: GuardedProtocol(self._on_message),
            )
            connecting = self._manager.connect()
            if wait is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(connecting), wait)
                except OSError as exc:
                    raise AmiError("Login", f"cannot connect: {exc}") from None
                except TimeoutError:
                    raise AmiError("Login", "connect timed out") from None
        if wait is not None:
            try:
                await asyncio.wait_for(self._logged_in.wait(), wait)
            except TimeoutError:
                raise AmiError("Login", "not logged in (wrong credentials?)") from None

    async def close(self) -> None:
        if self._manager is not None:
            self._manager.config["reconnect_timeout"] = 0
            self._manager.connection_lost = lambda _exc: None  # no reconnect after close
            self._manager.close()
            self._manager = None
        for task in list(self._tasks):
            task.cancel()

    def on_user_event(self, name: str, handler: EventHandler, *, keys: Sequence[str]) -> None:
        """Call ``handler(headers)`` for every trusted ``UserEvent`` named ``name``
        (case-insensitive). ``headers`` holds ``keys`` (the keys the dialplan sets, "" when
        absent) and ``Uniqueid`` (the channel that raised it), nothing else."""
        picked = (*keys, "Uniqueid") if "Uniqueid" not in keys else tuple(keys)
        self._handlers.setdefault(name.lower(), []).append((handler, picked))

    def on_untrusted(self, handler: UntrustedHandler) -> None:
        """Call ``handler(report)`` (synchronously, in order) for every untrusted message."""
        self._untrusted.append(handler)

    def on_event(self, name: str, handler: SyncEventHandler) -> None:
        """Call ``handler(headers)`` for every AMI event ``name`` (e.g. ``BridgeEnter``), in
        order, synchronously. Register before :meth:`connect`."""
        if self._manager is not None:
            raise RuntimeError("register AMI event handlers before connect()")
        self._event_handlers.setdefault(name, []).append(handler)

    # -- actions ------------------------------------------------------------------------
    async def db_put(self, family: str, key: str, value: str) -> None:
        await self._send("DBPut", {"Family": family, "Key": key, "Val": value})

    async def db_del(self, family: str, key: str) -> None:
        """Delete an AstDB key; a key that does not exist is not an error."""
        try:
            await self._send("DBDel", {"Family": family, "Key": key})
        except AmiError as exc:
            # Asterisk 22 answers a missing key with "Database entry could not be deleted"
            if not ("not found" in exc.detail.lower() or "could not be deleted" in exc.detail):
                raise

    async def db_get(self, family: str, key: str) -> str | None:
        """The AstDB value, or None when the key does not exist."""
        try:
            events = await self._send("DBGet", {"Family": family, "Key": key})
        except AmiError as exc:
            if "not found" in exc.detail.lower():
                return None
            raise
        for event in events:
            if str(event.get("Event", "")).lower() == "dbgetresponse":
                return str(event.get("Val", ""))
        return None

    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]:
        """Every AstDB entry below ``family/key`` as (full key, value), the key as Asterisk 22
        gives it (``/callconsent/withdrawn/<id>``); an empty list when there is none (AMI
        ``DBGetTree``, Asterisk 19.6+)."""
        try:
            events = await self._send("DBGetTree", {"Family": family, "Key": key})
        except AmiError as exc:
            if "not found" in exc.detail.lower():
                return []
            raise
        return [
            (str(e.get("Key", "")), str(e.get("Val", "")))
            for e in events
            if str(e.get("Event", "")).lower() == "dbgettreeresponse"
        ]

    async def core_show_channels(self) -> list[dict[str, str]]:
        """Every channel now (AMI ``CoreShowChannels``): one dict of ``CoreShowChannel``
        headers each (``Uniqueid``, ``Channel``, ``BridgeId``, ...)."""
        events = await self._send("CoreShowChannels", {})
        return [
            {str(k): str(v) for k, v in e.items()}
            for e in events
            if str(e.get("Event", "")).lower() == "coreshowchannel"
        ]

    async def channel_on_hold(self, channel: str) -> bool:
        """Whether ``channel`` (name or uniqueid) is held now: Asterisk told it to hold (a
        re-INVITE ``a=sendonly`` from the far party; it hears the hold music). AMI ``Getvar`` of
        ``CHANNEL(onhold)``, the channel's own flag: a device state would mix the channel with
        every other call of its endpoint."""
        replies = await self._send("Getvar", {"Channel": channel, "Variable": "CHANNEL(onhold)"})
        return str(replies[0].get("Value", "")).strip() == "1"

    async def mixmonitor(self, channel: str, file: str, options: str) -> None:
        """Start MixMonitor on ``channel`` (name or uniqueid); ``options`` is ONE string such as
        ``bi(CALLCONSENT_MIXMONITOR_ID)``."""
        await self._send("MixMonitor", {"Channel": channel, "File": file, "Options": options})

    async def stop_mixmonitor(self, channel: str) -> None:
        """Stop the MixMonitor on ``channel`` (name or uniqueid)."""
        await self._send("StopMixMonitor", {"Channel": channel})

    async def mixmonitor_mute(self, channel: str, *, mute: bool) -> None:
        """Mute (or unmute) every MixMonitor on ``channel`` in both directions: the file keeps
        growing with silence (hold, R2)."""
        await self._send(
            "MixMonitorMute",
            {"Channel": channel, "Direction": "both", "State": "1" if mute else "0"},
        )

    async def setvar(self, channel: str, variable: str, value: str) -> None:
        await self._send("Setvar", {"Channel": channel, "Variable": variable, "Value": value})

    async def set_global(self, variable: str, value: str) -> None:
        """A global dialplan variable (Setvar without a channel)."""
        await self._send("Setvar", {"Variable": variable, "Value": value})

    # -- internals ----------------------------------------------------------------------
    async def _send(self, action: str, headers: Mapping[str, str]) -> Any:
        _check(action, headers)
        manager = self._manager
        if manager is None or not manager.authenticated or manager.protocol is None:
            raise AmiError(action, "not connected")
        try:
            future = manager.send_action({"Action": action, **headers})  # list when "will follow"
            reply = await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            raise AmiError(action, f"no answer within {self._timeout} s") from None
        except (OSError, AttributeError) as exc:  # AttributeError: transport gone mid-send
            raise AmiError(action, f"transport: {exc}") from None
        replies = reply if isinstance(reply, list) else [reply]
        first = replies[0] if replies else None
        tainted: set[str] = getattr(manager.protocol, "tainted", set())
        action_id = str(first.get("ActionID", "")) if first is not None else ""
        if action_id and action_id in tainted:
            tainted.discard(action_id)
            raise AmiError(action, "an untrusted message arrived while its answer was read")
        if first is None or str(first.get("Response", "")).lower() not in ("success", "follows"):
            message = str(first.get("Message", "")) if first is not None else "no response"
            raise AmiError(action, message or "failed")
        return replies

    def _logged_in_cb(self, _manager: Manager) -> None:
        self._logged_in.set()
        log.info("ami_connected")
        self._logins += 1
        metrics.AMI_CONNECTED.set(1)
        if self._logins > 1:
            metrics.AMI_RECONNECTS.inc()
        if self._on_login is not None:
            self._spawn(self._on_login())

    def _disconnected_cb(self, _manager: Manager, exc: object) -> None:
        self._logged_in.clear()
        metrics.AMI_CONNECTED.set(0)
        log.warning("ami_disconnected", error=str(exc))

    def _on_message(self, message: ami_wire.AmiMessage) -> None:
        if not message.trusted:
            self._distrust(message)
        elif message.event.lower() == "userevent":
            self._dispatch_user(message)
        else:
            self._dispatch_event(message)

    def _distrust(self, message: ami_wire.AmiMessage) -> None:
        report = Untrusted(message.event, message.problems, message.ids)
        log.warning(
            "ami_event_untrusted",
            ami_event=ami_wire.shown(message.event),
            problems=list(message.problems),
            duplicated=sorted(ami_wire.shown(k) for k in message.duplicated),
            ids=sorted(ami_wire.shown(i) for i in report.ids)[:20],
        )
        for handler in self._untrusted:
            try:
                handler(report)
            except Exception:  # a handler's bug must not kill the AMI reader
                log.exception("ami_untrusted_handler_failed")

    def _dispatch_user(self, message: ami_wire.AmiMessage) -> None:
        for handler, keys in self._handlers.get(message.get("UserEvent").lower(), []):
            self._spawn(handler(message.pick(keys)))

    def _dispatch_event(self, message: ami_wire.AmiMessage) -> None:
        headers = message.headers()
        for handler in self._event_handlers.get(message.event, []):
            try:
                handler(headers)
            except Exception:  # a handler's bug must not kill the AMI reader
                log.exception("ami_event_handler_failed", ami_event=message.event)

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:  # a handler's bug must not kill the AMI reader
                log.exception("ami_handler_failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@asynccontextmanager
async def session(config: AmiConfig, *, wait: float = LOGIN_WAIT_SECONDS) -> AsyncIterator[Ami]:
    """A logged-in AMI connection for one command, closed after the block; :class:`AmiError`
    when it cannot log in within ``wait`` seconds."""
    try:
        password = config.password.reveal()
    except SecretUnavailable as exc:
        raise AmiError("Login", str(exc)) from None
    ami = Ami(host=config.host, port=config.port, username=config.username, password=password)
    try:
        await ami.connect(wait=wait)
        yield ami
    finally:
        await ami.close()
