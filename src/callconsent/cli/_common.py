"""What every ``callconsent`` subcommand shares: the ``--config`` option and loading it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callconsent.config import Config, ConfigError, load_config

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

DEFAULT_CONFIG = Path("/etc/callconsent/callconsent.yaml")


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="the YAML config (default: %(default)s)",
    )


def load_or_exit(path: Path) -> Config:
    """The validated config, or every problem on stderr and exit 2."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
