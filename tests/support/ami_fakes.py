"""Fake AMI clients for the AMI adapters' unit tests: they record every action as a tuple
(``("MixMonitor", channel, file, options)``, ...) and fail the actions named in ``fail`` with the
:class:`~callconsent.ami.AmiError` Asterisk gives for a channel that is gone."""

from __future__ import annotations

from typing import Any

from callconsent.ami import AmiError


class FakeAmi:
    def __init__(self, *, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail or set()

    async def _do(self, *call: str) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise AmiError(call[0], "No such channel")

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self._do("DBPut", family, key, value)

    async def db_del(self, family: str, key: str) -> None:
        await self._do("DBDel", family, key)

    async def mixmonitor(self, channel: str, file: str, options: str) -> None:
        await self._do("MixMonitor", channel, file, options)

    async def setvar(self, channel: str, variable: str, value: str) -> None:
        await self._do("Setvar", channel, variable, value)


class StopAmi(FakeAmi):
    """A fake AMI that can also stop a MixMonitor."""

    async def stop_mixmonitor(self, channel: str) -> None:
        await self._do("StopMixMonitor", channel)


class TreeAmi(FakeAmi):
    """A fake AMI that also lists AstDB trees (the markers left while the app was away)."""

    def __init__(self, tree: list[tuple[str, str]] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.tree = tree or []

    async def db_tree(self, family: str, key: str) -> list[tuple[str, str]]:
        await self._do("DBGetTree", family, key)
        return list(self.tree)

    async def stop_mixmonitor(self, channel: str) -> None:
        await self._do("StopMixMonitor", channel)


class RouteAmi(TreeAmi):
    """A fake AMI for the withdrawal route's handler: it also sets globals (the seal key)."""

    async def set_global(self, variable: str, value: str) -> None:
        await self._do("SetGlobal", variable, value)
