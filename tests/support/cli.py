"""Running the ``callconsent`` lifecycle subcommands in-process, with a config object injected
(no YAML file, no environment): ``run(config, "purge", "--json") -> exit code``; and the
``cli_logging`` fixture for tests that run the whole command (``main.main``)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from callconsent.cli import lifecycle
from callconsent.config import Config


def run(config: Config, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="callconsent")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", type=Path, default=config.path)

    lifecycle.register(sub, with_config, lambda _path: config)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """For tests that call ``callconsent.cli.main.main``: it configures structlog for the
    process, bound to pytest's captured stderr; later tests must not log into that closed
    capture."""
    yield
    structlog.reset_defaults()
