"""``callconsent check-config FILE``: the verdict on a config file, for an admin or CI."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ._errors import ConfigError
from ._load import load_config
from ._model import Config


def check_config_main(path: Path, more_checks: Callable[[Config], list[str]] | None = None) -> int:
    """Print ``OK: <file>`` and the warnings (exit code 0), or every error (exit code 2).
    ``more_checks`` are the checks that need more than the file (e.g. the notice archive)."""
    try:
        config = load_config(path)
        errors = more_checks(config) if more_checks is not None else []
        if errors:
            raise ConfigError(errors, tuple(config.warnings))
    except ConfigError as exc:
        for line in exc.errors:
            print(f"error: {line}", file=sys.stderr)
        for line in exc.warnings:
            print(f"warning: {line}", file=sys.stderr)
        print(f"FAILED: {path} ({len(exc.errors)} error(s))", file=sys.stderr)
        return 2
    print(f"OK: {path}")
    for line in config.warnings:
        print(f"warning: {line}")
    enabled = [name for name, route in config.routes.items() if route.enabled]
    print(f"routes enabled: {', '.join(enabled) if enabled else 'none (nothing is recorded)'}")
    print(f"config sha256: {config.sha256}")
    return 0
