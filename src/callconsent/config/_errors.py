"""Collecting config problems: every error and warning, each naming the file and the key path."""

from __future__ import annotations


class ConfigError(Exception):
    """The config cannot be used. ``errors`` holds one line per problem, ``str()`` all of them."""

    def __init__(self, errors: list[str] | tuple[str, ...], warnings: tuple[str, ...] = ()) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        self.warnings: tuple[str, ...] = warnings
        count = len(self.errors)
        head = f"{count} config error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([head, *self.errors]))


class Problems:
    """Errors and warnings found while loading one file.

    Every entry reads ``<file>: <key.path>: <what is wrong>``. A key path that already has an error
    is remembered, so later rules can skip values that were never read correctly instead of piling
    consequential errors on top of the first one.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._failed: set[str] = set()

    def error(self, path: str, message: str) -> None:
        self._failed.add(path)
        self.errors.append(f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(
            f"{self.file}: {path}: {message}" if path else f"{self.file}: {message}"
        )

    def failed(self, *paths: str) -> bool:
        """True when any of ``paths`` (or a key above or below one of them) has an error."""
        for path in paths:
            for bad in self._failed:
                if bad == path or bad.startswith(path + ".") or path.startswith(bad + "."):
                    return True
        return False
