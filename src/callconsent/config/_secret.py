"""The ARI/AMI passwords: named by the config (``password_env`` or ``password_file``), read only
when a command connects to Asterisk.

Loading the config checks only how the secret is named. The offline commands (check-config,
purge, hold, export, erase, verify, index, ropa, identify, reconcile) never read it, so the
nightly purge and the DPO's export need no Asterisk password. ``serve``, ``agent set/sync`` and
``withdraw`` of a call still recording call :meth:`Secret.reveal`, which raises
:class:`SecretUnavailable` naming the config key and the variable or file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path


class SecretUnavailable(Exception):
    """The secret cannot be read. ``str()`` reads ``<file>: <key>: <what is wrong>``."""


class Secret:
    """A password from the environment or a file. Its repr and str never show the value."""

    __slots__ = ("_env", "_env_name", "_file", "_value", "_where")

    def __init__(self, value: str | None = None) -> None:
        self._value = value
        self._where = ""
        self._env_name: str | None = None
        self._env: Mapping[str, str] | None = None
        self._file: Path | None = None

    @classmethod
    def from_env(cls, where: str, name: str, env: Mapping[str, str] | None = None) -> Secret:
        """The value of environment variable ``name`` (looked up in ``env``, else the
        process environment, when first revealed)."""
        secret = cls()
        secret._where, secret._env_name, secret._env = where, name, env
        return secret

    @classmethod
    def from_file(cls, where: str, path: Path) -> Secret:
        """The stripped text of ``path`` (a regular file, mode 0600 or stricter; R32)."""
        secret = cls()
        secret._where, secret._file = where, path
        return secret

    @property
    def source(self) -> str:
        """Where the value comes from, e.g. ``environment variable CALLCONSENT_ARI_PASSWORD``."""
        if self._env_name is not None:
            return f"environment variable {self._env_name}"
        if self._file is not None:
            return f"file {self._file}"
        return "the config"

    def reveal(self) -> str:
        """The password; :class:`SecretUnavailable` when it cannot be read."""
        if self._value is None:
            self._value = self._read()
        return self._value

    def problem(self) -> str | None:
        """Why :meth:`reveal` fails, or None when it works."""
        try:
            self.reveal()
        except SecretUnavailable as exc:
            return str(exc)
        return None

    def _read(self) -> str:
        if self._env_name is not None:
            env = os.environ if self._env is None else self._env
            value = env.get(self._env_name, "")
            if not value:
                raise self._fail(f"environment variable {self._env_name} is not set")
            return value
        assert self._file is not None
        path = self._file
        try:
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                raise self._fail(f"{path} is not a regular file")
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise self._fail(
                    f"{path} is open to group or others (mode {stat.S_IMODE(mode):04o}); "
                    "chmod 600 it (R32)"
                )
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self._fail(f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise self._fail(f"{path} is not UTF-8 text") from None
        if not value:
            raise self._fail(f"{path} is empty")
        return value

    def _fail(self, message: str) -> SecretUnavailable:
        return SecretUnavailable(f"{self._where}: {message}" if self._where else message)

    def _key(self) -> tuple[object, ...]:
        if self._env_name is None and self._file is None:
            return ("value", self._value)
        return (self._where, self._env_name, self._file)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())
