"""The floors of ``wschan_cli`` (README, "Architecture"), read from the imports themselves with
``ast``: every import counts, lazy ones inside functions, TYPE_CHECKING ones and relative ones
included. A module imports from floors below its own and from inside its own unit; never from a
floor above, never from a sibling on its own floor, and no command from another command.

``FLOORS`` is the one place the allowed directions are written down.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wschan_cli"

#: The units of wschan_cli (a top-level module or package), lowest floor first.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("channel",),  # the state machine over websockets' sans-I/O protocol: the design studied
    ("secrets", "version", "programs", "startup"),  # leaves: secrets, version, programs, start-up
    ("settings",),  # the parsed connection options (ChannelOptions and the command line's)
    ("invariants", "options", "server", "exitcodes"),  # verdicts; settings; embedded server
    ("trace", "explore"),  # the shutdown scenarios on sockets; the scheduler over the Channel
    ("render",),  # terminal and JSON views, built from events
    ("runner",),  # a command's event loop: the error rule and the two-stage Ctrl-C
    ("sessions",),  # send's and connect's sessions
    ("commands",),  # one module (or package) per command: click, help, validation
    ("cli",),  # the wschan group
    ("entry",),  # the console script
    ("__main__",),  # python -m wschan_cli
)
FLOOR = {unit: n for n, units in enumerate(FLOORS) for unit in units}

#: Third-party libraries that only some units may import (the others may go anywhere above the
#: channel): rendering stays in render/ and the sessions, the command line in its own floors.
LIBRARIES = {
    "rich": {"render", "sessions", "commands"},
    "prompt_toolkit": {"sessions"},
    "click": {"settings", "options", "exitcodes", "commands", "cli"},
}


def module_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def imports_in(source: str, path: Path) -> set[str]:
    """The absolute names ``source`` imports, read as the file ``path`` of the package
    (relative imports resolved; ``from a import b`` gives ``a`` and ``a.b``)."""
    module = module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            full = f"{base}.{node.module or ''}".strip(".") if node.level else node.module or ""
            names.add(full)
            names.update(f"{full}.{alias.name}" for alias in node.names)
    return names


def unit_of(name: str) -> str | None:
    """The unit of wschan_cli a dotted name lies in (None outside wschan_cli, or for the
    package root, which holds only ``__version__``)."""
    parts = name.split(".")
    if parts[0] != "wschan_cli" or len(parts) < 2 or parts[1] == "__version__":
        return None
    return parts[1]


def wrong_imports(path: Path, source: str | None = None) -> list[str]:
    """Each import of the file ``path`` that breaks the floors, as one line."""
    here = unit_of(module_of(path))
    assert here in FLOOR, f"{here} is on no floor: add it to FLOORS"
    wrong = []
    for name in sorted(imports_in(source if source is not None else path.read_text(), path)):
        there = unit_of(name)
        top = name.split(".")[0]
        if there is not None and there != here and FLOOR.get(there, -1) >= FLOOR[here]:
            how = "a sibling" if FLOOR.get(there) == FLOOR[here] else "a floor above"
            wrong.append(f"{path.relative_to(PACKAGE)} imports {name} ({how})")
        elif top in LIBRARIES and here not in LIBRARIES[top]:
            wrong.append(f"{path.relative_to(PACKAGE)} imports {top} (only {LIBRARIES[top]})")
    return wrong


def test_every_unit_is_on_a_floor() -> None:
    units = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())
    } - {"__init__"}
    assert units == set(FLOOR)


@pytest.mark.parametrize("unit", sorted(FLOOR))
def test_a_unit_imports_only_from_the_floors_below_it(unit: str) -> None:
    folder = PACKAGE / unit
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
    assert [line for path in files for line in wrong_imports(path)] == []


def invariants_beyond_the_standard_library() -> list[str]:
    """invariants/ judges runs of the channel: it needs the channel and the standard library."""
    return sorted(
        f"{path.name} imports {name}"
        for path in (PACKAGE / "invariants").glob("*.py")
        for name in imports_in(path.read_text(), path)
        if name.split(".")[0] not in {*sys.stdlib_module_names, "__future__"}
        and unit_of(name) not in {"channel", "invariants"}
        and name != "wschan_cli"
    )


def test_the_invariants_import_only_the_channel_and_the_standard_library() -> None:
    assert invariants_beyond_the_standard_library() == []


def command_imports(imports: dict[str, set[str]]) -> list[str]:
    """``command imports name`` for each command (name -> the names its module or package
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


def test_no_command_imports_another_command() -> None:
    from wschan_cli.cli import COMMANDS

    found: dict[str, set[str]] = {}
    for module, _, _ in COMMANDS.values():
        name = module.rpartition(".")[2]
        folder = PACKAGE / "commands" / name
        files = sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]
        found[name] = set().union(*(imports_in(path.read_text(), path) for path in files))
    assert command_imports(found) == []


def test_the_check_sees_each_kind_of_wrong_import() -> None:
    # The mutations the checks must catch, one per rule.
    lazy_up = "def f():\n    from wschan_cli.render.color import Style\n"
    assert wrong_imports(PACKAGE / "options.py", lazy_up)  # a floor above, inside a function
    assert wrong_imports(PACKAGE / "explore" / "x.py", "from ..trace import scenarios\n")
    assert wrong_imports(PACKAGE / "sessions" / "x.py", "from ..commands import send\n")
    assert wrong_imports(PACKAGE / "explore" / "x.py", "import rich.console\n")  # a library
    assert not wrong_imports(PACKAGE / "render" / "x.py", "from .color import Style\n")
    assert not wrong_imports(PACKAGE / "render" / "x.py", "from ..channel import Event\n")
    sideways = {"connect": {"wschan_cli.commands.send.check_url"}, "send": {"click"}}
    assert command_imports(sideways) == ["connect imports wschan_cli.commands.send.check_url"]
