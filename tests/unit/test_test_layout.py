"""The test tree's own rules: no test module imports another ``test_*`` module (shared helpers
live in tests/support/), and unit tests never import the end-to-end tests' code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def imports(source: str, package: str) -> list[list[str]]:
    """Per import statement of a Python source, the dotted names it may load: ``import a.b``
    gives ``a.b``; ``from a import b`` gives ``a`` and ``a.b`` (b may be a module). Relative
    imports are resolved against ``package``, the dotted package of the file."""
    found: list[list[str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend([alias.name] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append([base, *(f"{base}.{alias.name}" for alias in node.names)])
    return found


def is_test_module(dotted: str) -> bool:
    """A ``test_*`` module of this tree: under ``tests.``, or a bare top-level name (pytest's
    rootdir on sys.path lets ``import test_x`` work). ``from callconsent import test_x`` is not."""
    parts = dotted.split(".")
    return parts[-1].startswith("test_") and (len(parts) == 1 or parts[0] == "tests")


def is_e2e(dotted: str) -> bool:
    return dotted == "tests.e2e" or dotted.startswith("tests.e2e.")


def layout_problems(tests: Path) -> list[str]:
    """What breaks the rules in the tree under ``tests`` (the folder named ``tests``)."""
    problems = []
    for path in sorted(tests.rglob("*.py")):
        relative = path.relative_to(tests.parent)
        package = ".".join(relative.parent.parts)
        for names in imports(path.read_text(encoding="utf-8"), package):
            tests_imported = [n for n in names if is_test_module(n)]
            e2e_imported = [n for n in names if is_e2e(n)]
            if tests_imported:
                problems.append(f"{relative} imports the test module {tests_imported[0]}")
            elif relative.parts[1] == "unit" and e2e_imported:
                problems.append(f"{relative} (a unit test) imports the e2e code {e2e_imported[0]}")
    return problems


def test_no_test_imports_a_test_module_and_no_unit_test_imports_e2e_code() -> None:
    assert layout_problems(TESTS) == []


def test_the_check_walks_every_test_folder() -> None:
    folders = {p.parent.name for p in TESTS.rglob("test_*.py")}
    assert {"unit", "e2e", "harness"} <= folders


@pytest.mark.parametrize(
    ("where", "source", "problem"),
    [
        ("unit/test_a.py", "from tests.unit.test_b import x\n", "imports the test module"),
        ("unit/test_a.py", "from tests.unit import test_b as b\n", "imports the test module"),
        ("unit/test_a.py", "import tests.unit.test_b\n", "imports the test module"),
        ("unit/test_a.py", "from .test_b import x\n", "imports the test module"),
        ("unit/test_a.py", "from test_b import x\n", "imports the test module"),
        ("e2e/test_a.py", "from tests.e2e.test_b import x\n", "imports the test module"),
        ("support/x.py", "from tests.unit.test_b import x\n", "imports the test module"),
        ("unit/test_a.py", "from tests.e2e.lab_app import x\n", "imports the e2e code"),
        ("unit/test_a.py", "from tests.e2e import lab_app\n", "imports the e2e code"),
        ("unit/test_a.py", "import tests.e2e.lab_app\n", "imports the e2e code"),
        ("unit/sub/test_a.py", "from ...e2e.lab_app import x\n", "imports the e2e code"),
    ],
)
def test_a_forbidden_import_is_found(tmp_path: Path, where: str, source: str, problem: str) -> None:
    path = tmp_path / "tests" / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    (found,) = layout_problems(tmp_path / "tests")
    assert problem in found and where in found


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("unit/test_a.py", "from tests.support.bridge import outcome\n"),
        ("unit/test_a.py", "from tests.harness.rtp_pcap import Digit\n"),
        ("e2e/test_a.py", "from tests.e2e.lab_app import LabApp\n"),  # e2e code for e2e tests
        ("unit/test_a.py", "from callconsent.withdrawal import route\n"),
        ("unit/test_a.py", "import pytest\n"),
        ("unit/test_a.py", "from callconsent.rules import test_digit\n"),  # not a test module
    ],
)
def test_allowed_imports_pass(tmp_path: Path, where: str, source: str) -> None:
    path = tmp_path / "tests" / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    assert layout_problems(tmp_path / "tests") == []
