"""The invariants sit below the scenarios and the explorer (issue 11, item 2), read from the
imports themselves with ``ast``, lazy ones inside functions included: ``explore/`` imports
neither ``trace/``, ``render/`` nor rich; ``invariants/`` imports the channel and the standard
library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wschan_cli"


def imports_of(package: Path) -> dict[str, set[str]]:
    """Each module of ``package`` (by file name) -> the absolute names it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        names = found.setdefault(path.name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside the package itself
                    names.add(f"wschan_cli.{package.name}.{node.module or ''}".rstrip("."))
                else:
                    names.add(node.module or "")
    return found


def below(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_probe_reads_lazy_and_relative_imports() -> None:
    found = imports_of(PACKAGE / "explore")
    assert "wschan_cli.channel" in found["mutants.py"]  # inside a function
    assert "wschan_cli.explore.loop" in found["engine.py"]  # relative


def test_explore_imports_neither_trace_render_nor_rich() -> None:
    wrong = {
        module: sorted(
            n for n in names if below(n, "wschan_cli.trace", "wschan_cli.render", "rich")
        )
        for module, names in imports_of(PACKAGE / "explore").items()
    }
    assert {m: n for m, n in wrong.items() if n} == {}


def test_invariants_import_only_the_channel_and_the_standard_library() -> None:
    allowed = ("wschan_cli.channel", "wschan_cli.invariants", *sys.stdlib_module_names)
    wrong = {
        module: sorted(n for n in names if not below(n, "__future__", *allowed))
        for module, names in imports_of(PACKAGE / "invariants").items()
    }
    assert {m: n for m, n in wrong.items() if n} == {}
