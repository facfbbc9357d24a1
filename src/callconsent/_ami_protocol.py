"""The AMI stream as :class:`Ami <callconsent.ami.Ami>` reads it: panoramisk's protocol with
:mod:`callconsent.ami_wire` as the reader, so only a trusted answer reaches panoramisk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import structlog
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from callconsent import ami_wire

log = structlog.get_logger("callconsent.ami")

_GREETING: Final = "Asterisk Call Manager/"
#: Events answering an action (matched to it by ``ActionID``) that the app sends.
_ANSWER_EVENTS: Final = frozenset(
    {
        "dbgetresponse",
        "dbgetcomplete",
        "dbgettreeresponse",
        "dbgettreecomplete",
        "coreshowchannel",  # CoreShowChannels' list (restart recovery, R1/R2)
        "coreshowchannelscomplete",
    }
)


class GuardedProtocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, reading the stream with :mod:`callconsent.ami_wire`: a trusted
    answer to an action goes to panoramisk (which resolves the action), every other message to
    ``sink`` (trusted or not), never to panoramisk's event dispatch."""

    def __init__(self, sink: Callable[[ami_wire.AmiMessage], None]) -> None:
        super().__init__()
        self._sink = sink
        self._reader = ami_wire.Reader()
        self._pending = b""  # bytes: a character split across two reads stays whole
        self._greeted = False
        #: ActionIDs of actions in flight when an untrusted message arrived: a list answer (e.g.
        #: CoreShowChannels, whose items carry caller text) may have lost an item to it, so the
        #: action fails instead of answering with a list that hides a call (fail closed)
        self.tainted: set[str] = set()
        self._factory: Any = None
        #: the loss of a connection that ended before panoramisk attached its manager
        self._lost_early: tuple[Exception | None] | None = None

    # panoramisk's manager attaches itself (``protocol.factory = manager``) in a callback of the
    # connect task. On uvloop a connection the peer resets at once is reported lost *before*
    # that callback: panoramisk's ``connection_lost`` then fails on ``factory is None`` and the
    # manager never hears of it, so it never reconnects (seen with an AMI that refuses logins
    # for a while). The loss is kept and handed to the manager as soon as it attaches.
    @property
    def factory(self) -> Any:
        return self._factory

    @factory.setter
    def factory(self, manager: Any) -> None:
        self._factory = manager
        if manager is not None and self._lost_early is not None:
            (exc,) = self._lost_early
            self._lost_early = None
            asyncio.get_running_loop().call_soon(manager.connection_lost, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._factory is None:
            self.closed = True
            self._lost_early = (exc,)
            return
        super().connection_lost(exc)

    def send(self, data: Any, as_list: bool = False) -> Any:
        """panoramisk's send, except on a connection already gone: there its failed write
        would be logged with the whole action, the Login's ``Secret`` included. The action's
        future then never resolves; the manager reconnects and logs in anew."""
        transport = getattr(self, "transport", None)
        if self.closed or transport is None or transport.is_closing():
            return asyncio.get_running_loop().create_future()
        return super().send(data, as_list)

    def data_received(self, data: bytes) -> None:
        self._pending += data
        if not self._greeted and self._pending.startswith(_GREETING.encode()):
            if b"\r\n" not in self._pending:
                return
            line, _, self._pending = self._pending.partition(b"\r\n")
            self.version = line.decode("ascii", "replace")[len(_GREETING) :].strip()
        self._greeted = True
        *parts, self._pending = self._pending.split(b"\r\n\r\n")
        for raw in parts:
            text = raw.decode("utf-8", "replace")
            if text.strip(ami_wire.EOL):
                self._one(text)

    def _one(self, text: str) -> None:
        message = self._reader.read(text)
        answer = message.is_response or (
            message.event.lower() in _ANSWER_EVENTS and message.get("ActionID") in self.responses
        )
        if message.trusted and (answer or message.event.lower() == "shutdown"):
            self.handle_message(Message.from_line(text.strip(ami_wire.EOL)))
        elif message.is_response:  # an answer with a repeated header: its action times out
            log.warning("ami_answer_untrusted", problems=list(message.problems))
        else:
            if not message.trusted and self.responses:
                self.tainted.update(str(k) for k in self.responses)
            try:
                self._sink(message)
            except Exception:  # nothing may break the reader: later events still count
                log.exception("ami_message_failed")
