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


def command_imports(imports: dict[str, set[str]]) -> list[str]:
    """``command imports name`` for each command (name -> the names its module, or package,
    imports) that imports another command's module. Shared helpers of the commands floor
    (``commands/exec_usage.py``) are not commands."""
    wrong = []
    for name, names in sorted(imports.items()):
        others = [f"wschan_cli.commands.{other}" for other in imports if other != name]
        wrong.extend(
            f"{name} imports {imported}"
            for imported in sorted(names)
            if any(imported == other or imported.startswith(other + ".") for other in others)
        )
    return wrong


def imports_of_commands(package: Path) -> dict[str, set[str]]:
    """What each command the ``wschan`` group loads (cli.COMMANDS) imports, by its last name."""
    from wschan_cli.cli import COMMANDS

    found: dict[str, set[str]] = {}
    for module, _, _ in COMMANDS.values():
        name = module.rpartition(".")[2]
        folder = package / "commands" / name
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
        found[name] = set().union(*(imports_of(path) for path in files))
    return found


def test_no_command_imports_another_command() -> None:
    assert command_imports(imports_of_commands(PACKAGE)) == []


def test_the_check_sees_a_wrong_import() -> None:
    # The mutations the test must catch: options importing render again (a lazy import), a
    # session importing a command through a relative import.
    lazy = imports_in(
        "def f():\n    from wschan_cli.render.color import Style\n", PACKAGE / "options.py"
    )
    assert any(name.startswith(FORBIDDEN["options"]) for name in lazy)
    relative = imports_in("from ..commands import send\n", PACKAGE / "sessions" / "x.py")
    assert any(name.startswith(FORBIDDEN["sessions"]) for name in relative)
    sideways = {"connect": {"wschan_cli.commands.send.check_url"}, "send": {"click"}}
    assert command_imports(sideways) == ["connect imports wschan_cli.commands.send.check_url"]
    assert "wschan_cli.render.color" in imports_in(
        "from .color import Style\n", PACKAGE / "render" / "x.py"
    )
