"""Every command has a man page that documents each option of its click definition; the pages
of ``wschan`` and ``wschan send`` list every exit status; all render without roff warnings."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from wschan_cli.cli import COMMANDS, cli

MAN = Path(__file__).resolve().parent.parent / "man"


def documented(page: str) -> set[str]:
    """The option names a page documents: every ``\\-x`` / ``\\-\\-long`` it mentions in a
    tagged paragraph (``.TP`` item) header."""
    text = (MAN / page).read_text()
    names: set[str] = set()
    lines = text.splitlines()
    for before, line in itertools.pairwise(lines):
        if before.startswith(".TP"):
            names.update(re.findall(r"\\-(?:\\-)?[0-9A-Za-z][\w\\-]*", line))
    return {name.replace("\\-", "-") for name in names}


def options_of(command: click.Command) -> set[str]:
    ctx = click.Context(command)
    names = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


PAGES = {"wschan.1": "", **{f"wschan-{name}.1": name for name in sorted(COMMANDS)}}


def command_of(page: str) -> click.Command:
    name = PAGES[page]
    command = cli.get_command(click.Context(cli), name) if name else cli
    assert command is not None
    return command


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_option_has_an_entry_in_its_man_page(page: str) -> None:
    assert (MAN / page).exists(), f"no man page {page}"
    missing = options_of(command_of(page)) - documented(page)
    assert not missing, f"{page} has no entry for {sorted(missing)}"


@pytest.mark.parametrize("page", ["wschan-send.1", "wschan.1"])
def test_the_exit_status_table_is_complete(page: str) -> None:
    text = (MAN / page).read_text()
    section = text.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
    codes = re.findall(r"^\.B (\d+)$", section, flags=re.M)
    expected = ["0", "1", "2", "3", "4", "5", "124", "130"]
    if page == "wschan.1":
        expected.insert(6, "6")
    assert codes == expected


def test_the_group_page_names_every_command() -> None:
    text = (MAN / "wschan.1").read_text()
    for name in cli.list_commands(click.Context(cli)):  # type: ignore[attr-defined]
        assert f".B {name.replace('-', chr(92) + '-')}" in text, name


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_page_renders_without_warnings(page: str) -> None:
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN / page)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
