"""Thin AMI helpers over panoramisk: one method per action, every failure one :class:`AmiError`.

    ami = Ami(host="127.0.0.1", port=5038, username="callconsent", password=secret)
    await ami.connect()                  # inside the running loop (panoramisk needs that)
    await ami.db_put("callconsent", "agent/agent1", "1")
    await ami.mixmonitor(caller_uniqueid, "/var/.../x.wav", "bi(CALLCONSENT_MIXMONITOR_ID)")
    ami.on_user_event("CallconsentAgent", handler)   # handler(headers: dict[str, str])

Nothing caller-controlled ever reaches a header: every value is checked to hold no CR/LF (an AMI
header injection) and the values the app sends are its own (ids, paths it built, 0/1).

panoramisk re-sends actions still unanswered when the connection drops once it is back. A late
MixMonitor or a stale DBPut must never run: each action here waits ``timeout`` seconds, and a
timed-out or cancelled action's future is done, which panoramisk's replay skips.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

import structlog
from panoramisk import Manager

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


class AmiError(Exception):
    """An AMI action failed: not connected, timed out, refused by Asterisk or malformed."""

    def __init__(self, action: str, detail: str) -> None:
        super().__init__(f"AMI {action}: {detail}")
        self.action = action
        self.detail = detail


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
        self._handlers: dict[str, list[EventHandler]] = {}
        self._event_handlers: dict[str, list[SyncEventHandler]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._logged_in = asyncio.Event()

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
                events="call,user",  # UserEvent, and bridge/dial/hangup for the parties (R1)
                on_login=self._logged_in_cb,
                on_disconnect=self._disconnected_cb,
                reconnect_timeout=RECONNECT_SECONDS,
            )
            self._manager.register_event("UserEvent", self._dispatch)
            for name in self._event_handlers:
                self._manager.register_event(name, self._dispatch_event)
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

    def on_user_event(self, name: str, handler: EventHandler) -> None:
        """Call ``handler(headers)`` for every ``UserEvent`` named ``name`` (case-insensitive)."""
        self._handlers.setdefault(name.lower(), []).append(handler)

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

    async def mixmonitor(self, channel: str, file: str, options: str) -> None:
        """Start MixMonitor on ``channel`` (name or uniqueid); ``options`` is ONE string such as
        ``bi(CALLCONSENT_MIXMONITOR_ID)``."""
        await self._send("MixMonitor", {"Channel": channel, "File": file, "Options": options})

    async def stop_mixmonitor(self, channel: str) -> None:
        """Stop the MixMonitor on ``channel`` (name or uniqueid)."""
        await self._send("StopMixMonitor", {"Channel": channel})

    async def setvar(self, channel: str, variable: str, value: str) -> None:
        await self._send("Setvar", {"Channel": channel, "Variable": variable, "Value": value})

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
        if first is None or str(first.get("Response", "")).lower() not in ("success", "follows"):
            message = str(first.get("Message", "")) if first is not None else "no response"
            raise AmiError(action, message or "failed")
        return replies

    def _logged_in_cb(self, _manager: Manager) -> None:
        self._logged_in.set()
        log.info("ami_connected")
        if self._on_login is not None:
            self._spawn(self._on_login())

    def _disconnected_cb(self, _manager: Manager, exc: object) -> None:
        self._logged_in.clear()
        log.warning("ami_disconnected", error=str(exc))

    def _dispatch(self, _manager: Manager, event: Any) -> None:
        name = str(event.get("UserEvent", "")).lower()
        headers = {str(k): str(v) for k, v in event.items()}
        for handler in self._handlers.get(name, []):
            self._spawn(handler(headers))

    def _dispatch_event(self, _manager: Manager, event: Any) -> None:
        headers = {str(k): str(v) for k, v in event.items()}
        for handler in self._event_handlers.get(headers.get("Event", ""), []):
            try:
                handler(headers)
            except Exception:  # a handler's bug must not kill the AMI reader
                log.exception("ami_event_handler_failed", event=headers.get("Event"))

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
    ami = Ami(
        host=config.host,
        port=config.port,
        username=config.username,
        password=config.password.reveal(),
    )
    try:
        await ami.connect(wait=wait)
        yield ami
    finally:
        await ami.close()
