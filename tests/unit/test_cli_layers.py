"""The CLI's place in the import stack (issue 10): one plumbing module, nothing below the CLI
imports it, and no package's ``_private`` module is imported from outside that package."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def _modules() -> Iterator[tuple[Path, str]]:
    """(file, dotted package the file belongs to) for src, bench and tests/support."""
    for path in sorted(SRC.rglob("*.py")):
        dotted = ".".join(path.relative_to(SRC).with_suffix("").parts)
        yield (
            path,
            dotted.removesuffix(".__init__")
            if path.name == "__init__.py"
            else (dotted.rsplit(".", 1)[0]),
        )
    for folder in ("bench", "tests/support"):
        for path in sorted((REPO / folder).rglob("*.py")):
            yield path, folder.replace("/", ".")


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_module_imports_another_packages_private_module() -> None:
    found = []
    for path, package in _modules():
        for name in _imports(path):
            parts = name.split(".")
            private = next(
                (i for i, p in enumerate(parts) if i and p.startswith("_") and p[1:2] != "_"),
                None,
            )
            if private is None:
                continue
            owner = ".".join(parts[:private])
            if package != owner and not package.startswith(owner + "."):
                found.append(f"{path.relative_to(REPO)}: {name}")
    assert found == []


def test_only_the_command_line_imports_the_cli_package() -> None:
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path, package in _modules()
        if path.is_relative_to(SRC) and not package.startswith("callconsent.cli")
        for name in _imports(path)
        if name == "callconsent.cli" or name.startswith("callconsent.cli.")
    ]
    assert found == []


def test_exit_codes_are_defined_once_in_the_cli_plumbing() -> None:
    pattern = re.compile(r"^(EXIT_[A-Z]+|OK|PROBLEMS|USAGE)\b[^=]*=\s*\d", re.MULTILINE)
    defined = {
        str(path.relative_to(SRC)): pattern.findall(path.read_text("utf-8"))
        for path in SRC.rglob("*.py")
        if pattern.search(path.read_text("utf-8"))
    }
    assert defined == {"callconsent/cli/_common.py": ["EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE"]}
