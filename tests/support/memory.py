"""What an object keeps: the non-empty containers among its attributes (per-call maps)."""

from __future__ import annotations

from collections import deque
from typing import Any

_CONTAINERS = (dict, set, frozenset, list, deque)


def kept_state(obj: Any) -> dict[str, int]:
    """``{attribute: items}`` of every non-empty dict, set, list or deque ``obj`` holds in an
    attribute (``__dict__`` and ``__slots__``): after every call has ended, an adapter's per-call
    maps should all be gone from this."""
    attrs = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        for name in getattr(klass, "__slots__", ()):
            if hasattr(obj, name):
                attrs[name] = getattr(obj, name)
    return {
        name: len(value)
        for name, value in attrs.items()
        if isinstance(value, _CONTAINERS) and len(value) > 0
    }


def sqlite_heap_bytes() -> int:
    """The bytes SQLite has allocated in this process now (``sqlite3_memory_used``): every
    connection's page cache, statements and schema."""
    import _sqlite3
    import ctypes

    lib = ctypes.CDLL(_sqlite3.__file__)  # dlsym searches its libsqlite3 too
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used())
