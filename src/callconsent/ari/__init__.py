"""Thin, robust ARI client: REST helpers over our own keep-alive HTTP/1.1 pool (``_http``,
``_pool``), the events websocket over aiohttp, per-channel dispatch.

Public API::

    AriClient(base_url, username, password, app, *, session=None, backoff_initial=0.5,
              backoff_max=30.0, request_timeout=5.0, max_connections=32)
    AriError(status, method, path, detail) / AriNotFound(AriError)
    EventSink (Protocol): on_connected(), on_channel_event(channel_id, event)
    AriEvent = dict[str, Any]
"""

from __future__ import annotations

from ._client import AriClient
from ._errors import AriError, AriNotFound
from ._events import APPLICATION_REPLACED, READ_AT, AriEvent, EventSink, channel_id_of

__all__ = [
    "APPLICATION_REPLACED",
    "READ_AT",
    "AriClient",
    "AriError",
    "AriEvent",
    "AriNotFound",
    "EventSink",
    "channel_id_of",
]
