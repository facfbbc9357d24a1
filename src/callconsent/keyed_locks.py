"""One asyncio lock per key (a call's uniqueid), kept only while someone holds or awaits it.

A ``dict`` of locks filled with ``setdefault`` keeps one lock per call ever seen: a mid-call
change (a hold, an agent's decision, a withdrawal) for a call whose recording has ended, or
that was never recorded, left its lock behind for the life of the process. Here a key's lock
is dropped when its last user leaves; the next user of the key makes a fresh one, which no one
else can hold, so changes to one call stay serialised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holding or waiting


class KeyedLocks:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        """Keys held or awaited now."""
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the ``async with`` block."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]
