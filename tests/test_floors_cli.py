"""The client side's imports point down (issue 11): cli -> commands -> sessions -> render ->
options. Read with ``ast`` (every import, lazy ones inside functions and TYPE_CHECKING ones
included), so a wrong direction fails here rather than in a review.

The whole tree's floors are issue 11's own test; these are the rules of the send/connect split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wschan_cli"

#: module (dotted, below wschan_cli) -> what it may not import (dotted prefixes).
FORBIDDEN = {
    "options": ("wschan_cli.render", "wschan_cli.sessions", "wschan_cli.commands"),
    "secrets": ("wschan_cli.render", "wschan_cli.sessions", "wschan_cli.commands"),
    "exitcodes": ("wschan_cli.render", "wschan_cli.sessions", "wschan_cli.commands"),
    "runner": ("wschan_cli.render", "wschan_cli.sessions", "wschan_cli.commands"),
    "render": ("wschan_cli.sessions", "wschan_cli.commands"),
    "sessions": ("wschan_cli.commands",),
}


def imports_of(path: Path) -> set[str]:
    """The absolute names ``path`` imports (relative imports resolved)."""
    return imports_in(path.read_text(), path)


def imports_in(source: str, path: Path) -> set[str]:
    """The absolute names ``source`` imports, read as the file ``path`` of the package."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            name = node.module or ""
            full = f"{base}.{name}".strip(".") if node.level else name
            names.add(full)
            names.update(f"{full}.{alias.name}" for alias in node.names)
    return names


def files_of(floor: str) -> list[Path]:
    path = PACKAGE / floor
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def wrong_imports(floor: str) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files_of(floor)
        for name in sorted(imports_of(path))
        if name.startswith(FORBIDDEN[floor])
    ]


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_nothing_imports_a_floor_above_it(floor: str) -> None:
    assert wrong_imports(floor) == []


def test_no_command_imports_another_command() -> None:
    wrong = []
    commands = PACKAGE / "commands"
    for path in sorted(commands.rglob("*.py")):
        own = path.relative_to(commands).parts[0].removesuffix(".py")
        for name in sorted(imports_of(path)):
            parts = name.split(".")
            if parts[:2] == ["wschan_cli", "commands"] and len(parts) > 2 and parts[2] != own:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert wrong == []


def test_the_check_sees_a_wrong_import() -> None:
    # The mutations the test must catch: options importing render again (a lazy import), a
    # session importing a command through a relative import.
    lazy = imports_in(
        "def f():\n    from wschan_cli.render.color import Style\n", PACKAGE / "options.py"
    )
    assert any(name.startswith(FORBIDDEN["options"]) for name in lazy)
    relative = imports_in("from ..commands import send\n", PACKAGE / "sessions" / "x.py")
    assert any(name.startswith(FORBIDDEN["sessions"]) for name in relative)
    assert "wschan_cli.render.color" in imports_in(
        "from .color import Style\n", PACKAGE / "render" / "x.py"
    )
